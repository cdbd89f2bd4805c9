// An example that uses every call of the Tandem client, type-checked against
// web/static/tandem.d.ts by `npx tsc --noEmit` (scripts/test-js.sh). It is
// never run; it only has to compile, and it fails to when the declarations
// and the documented API drift apart.
import {
  CLIENT_NAME,
  Client,
  OpBuilder,
  OpError,
  TandemError,
  apply,
  baseLength,
  check,
  codePointLength,
  codePointToUtf16,
  compose,
  connect,
  delta,
  invert,
  isCanonical,
  isNoop,
  normalize,
  ot,
  splice,
  transform,
  transformIndex,
  transformRange,
  transformSelection,
  utf16ToCodePoint,
  wellFormed,
} from "../../web/static/tandem.js";
import type {
  ChangeEvent,
  Comment,
  Doc,
  Member,
  Message,
  Op,
  Range,
  RemoteCursor,
  Selection,
  Status,
  StorageLike,
  Subscription,
} from "../../web/static/tandem.js";

export async function example(storage: StorageLike): Promise<void> {
  const client: Client = connect({
    url: "https://tandem.example.com",
    token: async () => (await fetch("/token")).text(),
    storage,
    backoff: { min: 250, max: 10_000, factor: 2 },
    connectTimeout: 5000,
    storagePrefix: "app:",
  });
  const guest = new Client({ url: "ws://127.0.0.1:8080/ws", token: "", user: "ann", name: "Ann", WebSocket: globalThis.WebSocket, storage: null });
  guest.close();

  const offStatus = client.on("status", (status: Status, detail) => {
    console.log(status, detail.attempt, detail.delay, detail.code, detail.reason);
  });
  client.once("connected", ({ clientId, user, server }) => console.log(clientId, user.name, user.color, server));
  client.on("disconnect", ({ code, reason }) => console.log(code, reason));
  client.on("refreshed", () => {});
  const onError = (err: TandemError) => console.error(err.code, err.message, err.frame?.code);
  client.on("error", onError);
  client.off("error", onError);
  offStatus();
  await client.whenConnected();
  const rtt: number = await client.ping();
  await client.refreshToken();
  console.log(CLIENT_NAME, client.url, client.status, client.clientId, client.user?.id, client.storage, client.storagePrefix, rtt);

  // Channels.
  const chat: Subscription = client.subscribe("chat:42", (m: Message) => console.log(m.offset, m.event, m.data, m.from?.user, m.ts, m.retracted), {
    since: { offset: 17, epoch: "k3" },
  });
  await chat.ready;
  const { offset } = await chat.publish("message", { text: "hi @bob" });
  await chat.publish("typing", { on: true }, { ephemeral: true, echo: false });
  if (offset !== null) await chat.retract(offset);
  await chat.markRead(chat.offset ?? 0);
  chat.on("message", (m) => console.log(m.channel));
  chat.on("retracted", ({ offset, by }) => console.log(offset, by));
  chat.on("receipt", ({ user, offset, ts }) => console.log(user, offset, ts, chat.receipts[user]));
  chat.on("subscribed", ({ offset, epoch, recovered, resumed }) => console.log(offset, epoch, recovered, resumed));
  chat.on("gap", ({ since }) => console.log("reload history after", since));
  chat.on("unsubscribed", ({ reason }) => console.log(reason));
  chat.on("error", (err) => console.log(err.code));
  await chat.presence.set({ typing: true });
  chat.presence.on("join", (m: Member) => console.log(m.clientId, m.user.name, m.state));
  chat.presence.on("update", (m) => console.log(m.state));
  chat.presence.on("leave", (m) => console.log(m.user.id));
  chat.presence.on("count", (n: number) => console.log(n));
  chat.presence.on("sync", (ms: Map<string, Member>) => console.log(ms.size));
  chat.presence.on("change", () => console.log(chat.presence.members.size, chat.presence.count));
  console.log(chat.channel, chat.epoch, chat.active, chat.client === client, client.getSubscription("chat:42") === chat);
  await chat.unsubscribe();

  // Documents.
  const doc: Doc = client.openDoc("notes-1", { undoGroupMs: 500, storage: true });
  await doc.ready;
  doc.insert(0, "Hello 😀");
  doc.delete(0, 1);
  doc.replace(0, 0, "h");
  doc.spliceUTF16(doc.toUTF16(6), 2, "🎉");
  doc.submit([doc.length, "!"]);
  doc.submit(["x"], { origin: "local" });
  const cp: number = doc.fromUTF16(doc.text.length);
  if (doc.canUndo) doc.undo();
  if (doc.canRedo) doc.redo();
  doc.setSelection([{ anchor: 0, head: cp }]);
  const sel: Selection[] | null = doc.selection;
  doc.on("change", (e: ChangeEvent) => {
    for (const s of e.splices) console.log(s.index, s.deleteCount, s.text);
    console.log(e.op, e.local, e.origin, e.version, e.uid, e.user, e.clientId);
  });
  doc.on("ack", ({ version, uid }) => console.log(version, uid));
  doc.on("synced", ({ version }) => console.log(version));
  doc.on("open", ({ version }) => console.log(version));
  doc.on("cursor", (c: RemoteCursor) => console.log(c.clientId, c.user?.color, c.ranges));
  doc.on("cursors", (all) => console.log(all.size));
  doc.on("presence", ({ event, member, members }) => console.log(event, member?.clientId, members.size));
  doc.on("reset", ({ reason, error, lost, base }) => console.log(reason, error?.code, lost.map((p) => apply(base, p.op))));
  doc.on("closed", ({ reason }) => console.log(reason));
  doc.on("error", (err) => console.log(err.code));
  for (const [id, c] of doc.cursors) console.log(id, c.ranges[0]?.head);
  for (const [id, m] of doc.members) console.log(id, m.user.name);
  console.log(doc.id, doc.version, doc.loaded, doc.closed, doc.state, doc.pending, doc.client === client, client.getDoc("notes-1") === doc, sel);

  // Comments.
  const c: Comment = await doc.comments.add({ from: 0, to: 5 }, "Why? @bob");
  const r: Comment = await doc.comments.reply(c.id, "Because.");
  await doc.comments.edit(r.id, "Because!");
  await doc.comments.resolve(c.id);
  await doc.comments.reopen(c.id);
  await doc.comments.delete(r.id);
  doc.comments.on("change", ({ action, comment, local }) => console.log(action, comment?.range.from, local));
  const all: Comment[] = doc.comments.list();
  console.log(all.length, doc.comments.get(c.id)?.resolved, c.parent, c.user.id, c.createdAt, c.updatedAt);

  await doc.synced();
  await doc.close({ timeout: 1000 });
  client.reconnect();
  client.close();
}

// The OT engine and the code-point helpers.
export function otExample(): void {
  const s = "a😀b";
  const a: Op = new OpBuilder().retain(1).insert("x").delete(1).op();
  const b: Op = splice(2, 1, "Z");
  const [a2, b2] = transform(a, b);
  const ab = compose(a, b2);
  check(ab, codePointLength(s));
  const out = apply(apply(s, a), b2);
  console.log(out === apply(apply(s, b), a2), apply(s, ab), invert(a, s), normalize([2, -1, "x"]));
  console.log(isCanonical(a), baseLength(a), delta(a), isNoop([]), wellFormed("\ud800"));
  const rng: Range = transformRange(a, { from: 0, to: 2 });
  const sel: Selection = transformSelection(a, { anchor: 1, head: 2 }, true);
  console.log(rng, sel, transformIndex(a, 1, false), codePointToUtf16(s, 2), utf16ToCodePoint(s, 3));
  console.log(ot.transform(a, b), ot.apply(s, a));
  try {
    apply("", [5]);
  } catch (err) {
    if (err instanceof OpError) console.log(err.message);
  }
  const e = new TandemError("forbidden", "no");
  console.log(e.code);
}
