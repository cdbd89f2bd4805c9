// The document state machine against a scripted server, for the cases a
// real server only produces by chance: history compacted away on a reopen,
// one's own op arriving as another connection's, stale acks, late cursors.
// It also exercises the WebSocket option.
import test from "node:test";
import assert from "node:assert/strict";
import { connect } from "../../../web/static/tandem.js";
import { memStorage } from "../support/helpers.mjs";

// FakeWS is a WebSocket the test plays the server of.
class FakeWS {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWS.all.push(this);
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.();
    });
  }
  send(data) {
    const f = JSON.parse(data);
    this.sent.push(f);
    if (f.type === "connect") this.recv({ id: f.id, type: "connected", client_id: `c${FakeWS.all.length}`, user: { id: "me", name: "Me", color: "#000" }, ping_interval: 25, server: "fake" });
  }
  close() {
    this.readyState = 3;
  }
  recv(...frames) {
    this.onmessage?.({ data: frames.map((f) => JSON.stringify(f)).join("\n") });
  }
  // last returns the last frame of a type the client sent.
  last(type) {
    return this.sent.filter((f) => f.type === type).at(-1);
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: "" });
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5));

async function setup(storage = null) {
  FakeWS.all = [];
  const client = connect({ url: "http://fake", WebSocket: FakeWS, storage, backoff: { min: 1, max: 2 } });
  await client.whenConnected();
  const ws = FakeWS.all[0];
  const doc = client.openDoc("d");
  await tick();
  const open = ws.last("open");
  ws.recv({ id: open.id, type: "snapshot", doc: "d", version: 3, content: "abc", comments: [], members: [], cursors: [] });
  await doc.ready;
  return { client, doc, ws };
}

test("a reopen the server can no longer serve resets and reports what was pending", async () => {
  const { client, doc, ws } = await setup();
  doc.insert(3, "d");
  assert.equal(ws.last("op").version, 3);
  ws.drop();
  doc.insert(0, ">");
  await client.whenConnected();
  await tick();
  const ws2 = FakeWS.all.at(-1);
  const open = ws2.last("open");
  assert.equal(open.version, 3, "reopened at its version");
  const reset = new Promise((r) => doc.once("reset", r));
  const changes = [];
  doc.on("change", (e) => changes.push(e));
  ws2.recv({ id: open.id, type: "error", code: "conflict", message: "history compacted away", doc: "d" });
  await tick();
  const snap = ws2.last("open");
  assert.equal(snap.version, undefined, "then opened without a version");
  ws2.recv({ id: snap.id, type: "snapshot", doc: "d", version: 9, content: "abcXYZ", comments: [], members: [], cursors: [] });
  const e = await reset;
  assert.equal(e.reason, "history");
  assert.equal(e.base, "abc");
  assert.deepEqual(e.lost.map((p) => p.op), [[3, "d"], [">"]]);
  assert.equal(doc.text, "abcXYZ");
  assert.equal(doc.version, 9);
  assert.equal(changes.at(-1).origin, "reset");
  assert.deepEqual(changes.at(-1).op, ["abcXYZ", -5], "from >abcd to abcXYZ");
  client.close();
});

test("one's own op relayed from an earlier connection counts as its ack; stale acks are ignored", async () => {
  const { client, doc, ws } = await setup();
  doc.insert(0, "x");
  const op = ws.last("op");
  doc.insert(1, "y"); // buffered
  assert.equal(doc.state, "awaitingWithBuffer");
  ws.drop();
  await client.whenConnected();
  await tick();
  const ws2 = FakeWS.all.at(-1);
  // The server had not applied it yet when we reopened...
  const open = ws2.last("open");
  ws2.recv({ id: open.id, type: "opened", doc: "d", version: 3, ops: [], comments: [], members: [], cursors: [] });
  await tick();
  const resent = ws2.last("op");
  assert.equal(resent.uid, op.uid, "resent with its uid");
  // ...then the old connection's frame got there: it comes as someone's op.
  ws2.recv({ type: "op", doc: "d", version: 3, op: ["x"], uid: op.uid, user: "me", client_id: "c1", ts: "" });
  assert.equal(doc.version, 4);
  assert.equal(doc.state, "awaiting", "the buffer went out");
  const next = ws2.last("op");
  assert.deepEqual([next.version, next.op], [4, [1, "y"]]);
  // The resend's ack names the original version: stale, ignored.
  ws2.recv({ id: resent.id, type: "ack", doc: "d", version: 3, uid: op.uid });
  assert.equal(doc.version, 4);
  ws2.recv({ id: next.id, type: "ack", doc: "d", version: 4, uid: next.uid });
  assert.equal(doc.state, "synchronized");
  assert.equal(doc.text, "xyabc");
  client.close();
});

test("a cursor from an older version is moved through the ops since and our pending ones", async () => {
  const { client, doc, ws } = await setup();
  ws.recv({ type: "op", doc: "d", version: 3, op: ["12"], uid: "u1", user: "bob", client_id: "cb", ts: "" });
  ws.recv({ type: "op", doc: "d", version: 4, op: [5, "!"], uid: "u2", user: "cy", client_id: "cc", ts: "" });
  assert.equal(doc.text, "12abc!");
  doc.insert(0, "__"); // pending
  // Bob's selection 0-3 at v3: his own insert at 0 moves it past "12" (own
  // op), Cy's insert at its end leaves it (not Cy's), and our pending insert
  // before it shifts it by two.
  ws.recv({ type: "cursor", doc: "d", version: 3, client_id: "cb", user: { id: "bob" }, ranges: [{ anchor: 0, head: 3 }] });
  assert.deepEqual(doc.cursors.get("cb").ranges, [{ anchor: 4, head: 7 }]);
  client.close();
});

test("storage holds pending edits with their base, and nothing once acked", async () => {
  const storage = memStorage();
  const { client, doc, ws } = await setup(storage);
  doc.insert(0, "a");
  doc.insert(0, "b");
  const saved = JSON.parse(storage.getItem(storage.keys()[0]));
  assert.equal(saved.version, 3);
  assert.equal(saved.text, "abc");
  assert.deepEqual(saved.inflight.op, ["a"]);
  assert.deepEqual(saved.buffer.op, ["b"]);
  const op = ws.last("op");
  ws.recv({ id: op.id, type: "ack", doc: "d", version: 3, uid: op.uid });
  const again = JSON.parse(storage.getItem(storage.keys()[0]));
  assert.equal(again.version, 4);
  assert.equal(again.text, "aabc");
  assert.equal(again.buffer, null);
  const op2 = ws.last("op");
  ws.recv({ id: op2.id, type: "ack", doc: "d", version: 4, uid: op2.uid });
  assert.deepEqual(storage.keys(), []);
  client.close();
});

test("undo groups typing, and starts a new step for a change of kind or a caret jump", async () => {
  FakeWS.all = [];
  const client = connect({ url: "http://fake", WebSocket: FakeWS, storage: null, backoff: { min: 1, max: 2 } });
  await client.whenConnected();
  const ws = FakeWS.all[0];
  const doc = client.openDoc("d", { undoGroupMs: 10000 });
  await tick();
  const open = ws.last("open");
  ws.recv({ id: open.id, type: "snapshot", doc: "d", version: 0, content: "abc", comments: [], members: [], cursors: [] });
  await doc.ready;
  try {
    // Typing "xyz" key by key at the end: one step.
    doc.insert(3, "x");
    doc.insert(4, "y");
    doc.insert(5, "z");
    // Deleting two characters with backspace right after: another step.
    doc.delete(5, 1);
    doc.delete(4, 1);
    // The caret jumps to the start, typing there: a third step.
    doc.setSelection([{ anchor: 0, head: 0 }]);
    doc.insert(0, "!");
    doc.insert(1, "?");
    assert.equal(doc.text, "!?abcx");
    doc.undo();
    assert.equal(doc.text, "abcx", "the typing at the start");
    doc.undo();
    assert.equal(doc.text, "abcxyz", "the two deletions");
    doc.undo();
    assert.equal(doc.text, "abc", "the typing at the end");
    assert.equal(doc.canUndo, false);
  } finally {
    client.close();
  }
});
