// Reconnection and offline work: dropped connections, backoff,
// resubscription with since, reopening documents, edits made while the
// server is away, and edits kept in storage across a reload.
import test from "node:test";
import assert from "node:assert/strict";
import { countUid, memStorage, newClient, serverText, skip, sleep, startProxy, uniq, waitFor } from "../support/helpers.mjs";

test("a connection closed right after submit lands the op exactly once", { skip }, async () => {
  const id = uniq("drop");
  const c = newClient();
  const d = c.openDoc(id);
  await d.ready;
  d.insert(0, "base ");
  await d.synced();
  let uid;
  d.once("change", (e) => (uid = e.uid));
  d.insert(5, "once");
  c.reconnect(); // the op frame went out; its ack cannot come back on this socket
  await d.synced();
  assert.equal(d.text, "base once");
  assert.equal(await countUid(id, uid), 1);
  assert.equal((await serverText(id)).text, "base once");
});

test("a connection cut mid-op by the network lands the op exactly once", { skip }, async () => {
  const id = uniq("cut");
  const proxy = await startProxy();
  const c = newClient({ url: proxy.url });
  const d = c.openDoc(id);
  await d.ready;
  const uids = [];
  d.on("change", (e) => e.local && uids.push(e.uid));
  for (let i = 0; i < 5; i++) {
    d.insert(d.length, `${i}`);
    // Cut at once or a little later: the op may or may not have reached
    // the server, and its ack may or may not have come back.
    if (i % 2) await sleep(i);
    proxy.drop();
    await d.synced();
  }
  assert.equal(d.text, "01234");
  assert.equal((await serverText(id)).text, "01234");
  for (const uid of new Set(uids)) assert.equal(await countUid(id, uid), 1, uid);
});

test("reconnection backs off, resubscribes with since and reopens documents", { skip }, async () => {
  const channel = uniq("chat:recover");
  const id = uniq("reopen");
  const proxy = await startProxy();
  const c = newClient({ url: proxy.url, backoff: { min: 40, max: 160 } });
  const other = newClient();
  const got = [];
  const sub = c.subscribe(channel, (m) => got.push(m.data.n));
  const d = c.openDoc(id);
  await Promise.all([sub.ready, d.ready]);
  const pub = other.subscribe(channel);
  await pub.ready;
  await pub.publish("m", { n: 1 });
  await waitFor(() => got.length === 1, "the first message");
  const statuses = [];
  c.on("status", (s, detail) => statuses.push({ s, ...detail }));
  const subscribed = [];
  sub.on("subscribed", (e) => subscribed.push(e));
  await proxy.down();
  // While the client is away: three messages and an edit.
  for (const n of [2, 3, 4]) await pub.publish("m", { n });
  const od = other.openDoc(id);
  await od.ready;
  od.insert(0, "edited while away");
  await od.synced();
  await waitFor(() => statuses.filter((x) => x.s === "reconnecting").length >= 4, "four retries", 8000);
  await proxy.up();
  await waitFor(() => c.status === "connected", "reconnected", 5000);
  await waitFor(() => got.length === 4 && d.text === "edited while away", "recovered messages and text");
  assert.deepEqual(got, [1, 2, 3, 4], "every message once, in order");
  assert.deepEqual(subscribed.at(-1), { offset: 4, epoch: sub.epoch, recovered: true, resumed: true });
  assert.equal(d.version, od.version);
  // Delays grow by factor 2 from 40 ms to the 160 ms cap, with jitter in
  // the upper half.
  const retries = statuses.filter((x) => x.s === "reconnecting");
  retries.forEach((r, i) => {
    const ceiling = Math.min(160, 40 * 2 ** i);
    assert.ok(r.delay >= ceiling / 2 && r.delay <= ceiling, `retry ${i + 1}: delay ${r.delay}, ceiling ${ceiling}`);
    assert.equal(r.attempt, i + 1);
  });
  // Live traffic flows again.
  await pub.publish("m", { n: 5 });
  await waitFor(() => got.length === 5, "a live message after the reconnect");
});

test("a subscription that cannot recover reports a gap", { skip }, async () => {
  const channel = uniq("chat:gap");
  const c = newClient();
  const pub = newClient().subscribe(channel);
  await pub.ready;
  await pub.publish("m", { n: 1 });
  const sub = c.subscribe(channel, () => {}, { since: { offset: 1, epoch: "an-epoch-long-gone" } });
  const gap = new Promise((r) => sub.once("gap", r));
  await sub.ready;
  const g = await gap;
  assert.equal(g.since, 1);
  assert.equal(sub.epoch !== "an-epoch-long-gone", true);
});

test("an offline edit made while the server is away is applied once it is back", { skip }, async () => {
  const id = uniq("offline");
  const proxy = await startProxy();
  const c = newClient({ url: proxy.url });
  const d = c.openDoc(id);
  await d.ready;
  d.insert(0, "online. ");
  await d.synced();
  await proxy.down();
  await waitFor(() => c.status === "reconnecting", "the drop noticed");
  const uids = new Set();
  d.on("change", (e) => uids.add(e.uid));
  d.insert(d.length, "offline");
  d.delete(0, 1);
  d.insert(0, "O");
  assert.equal(d.text, "Online. offline", "local text at once");
  assert.equal(d.state, "awaitingWithBuffer");
  await sleep(100);
  await proxy.up();
  await d.synced();
  assert.equal((await serverText(id)).text, "Online. offline");
  for (const uid of uids) assert.equal(await countUid(id, uid), 1);
});

test("offline edits kept in storage survive a reload and land once", { skip }, async () => {
  const id = uniq("reload");
  const storage = memStorage();
  const proxy = await startProxy();
  const c1 = newClient({ url: proxy.url, storage });
  const d1 = c1.openDoc(id);
  await d1.ready;
  d1.insert(0, "hello world");
  await d1.synced();
  assert.equal(storage.keys().length, 0, "nothing kept once everything is acked");
  await proxy.down();
  const uids = new Set();
  d1.on("change", (e) => uids.add(e.uid));
  d1.insert(5, ",");
  d1.insert(d1.length, "!");
  d1.delete(0, 1);
  d1.insert(0, "H");
  assert.equal(d1.text, "Hello, world!");
  c1.close(); // the page goes away
  assert.equal(storage.keys().length, 1, "pending edits in storage");
  // Someone else edits meanwhile, so the reload must transform.
  const other = newClient();
  const od = other.openDoc(id);
  await od.ready;
  od.insert(6, "big ");
  await od.synced();
  await proxy.up();
  // The reload: a new client instance with the same storage.
  const c2 = newClient({ url: proxy.url, storage });
  const d2 = c2.openDoc(id);
  assert.equal(d2.loaded, true, "the text is there before the server answers");
  assert.equal(d2.text, "Hello, world!");
  d2.insert(d2.length, " :)");
  await d2.ready;
  await d2.synced();
  const want = "Hello, big world! :)";
  assert.equal(d2.text, want);
  assert.equal((await serverText(id)).text, want);
  await waitFor(() => od.text === want, "the edits at the other client");
  for (const uid of uids) assert.equal(await countUid(id, uid), 1, uid);
  assert.equal(storage.keys().length, 0, "storage emptied once acked");
});

test("an op applied but not acknowledged before a reload is not applied again", { skip }, async () => {
  const id = uniq("reload-acked");
  const storage = memStorage();
  const c1 = newClient({ storage });
  const d1 = c1.openDoc(id);
  await d1.ready;
  let uid;
  d1.once("change", (e) => (uid = e.uid));
  d1.insert(0, "exactly once");
  c1.close(); // the frame is out; the ack will never be read
  assert.equal(storage.keys().length, 1);
  const c2 = newClient({ storage });
  const d2 = c2.openDoc(id);
  await d2.ready;
  await d2.synced();
  assert.equal(d2.text, "exactly once");
  assert.equal(await countUid(id, uid), 1);
  assert.equal((await serverText(id)).text, "exactly once");
});
