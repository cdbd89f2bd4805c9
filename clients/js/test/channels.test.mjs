// Channels against the real server: publish and subscribe, presence, read
// receipts, retraction.
import test from "node:test";
import assert from "node:assert/strict";
import { newClient, skip, sleep, uniq, waitFor } from "../support/helpers.mjs";

test("publish and subscribe: offsets, echo, ephemeral, retract", { skip }, async () => {
  const channel = uniq("chat:pubsub");
  const a = newClient({ user: "ann", name: "Ann" });
  const b = newClient({ user: "bob" });
  const ga = [];
  const gb = [];
  const sa = a.subscribe(channel, (m) => ga.push(m));
  const sb = b.subscribe(channel, (m) => gb.push(m));
  await Promise.all([sa.ready, sb.ready]);
  assert.equal(sa.offset, 0);
  const { offset } = await sa.publish("message", { text: "hi" });
  assert.equal(offset, 1);
  await waitFor(() => ga.length === 1 && gb.length === 1, "delivery to both");
  assert.deepEqual(gb[0].data, { text: "hi" });
  assert.equal(gb[0].event, "message");
  assert.equal(gb[0].offset, 1);
  assert.equal(gb[0].from.user, "ann");
  assert.equal(gb[0].from.clientId, a.clientId);
  assert.equal(gb[0].from.client_id, a.clientId, "the deprecated alias");
  assert.ok(gb[0].ts);
  // echo false: everyone but the publisher.
  await sa.publish("message", { text: "quiet" }, { echo: false });
  await waitFor(() => gb.length === 2, "the echo-less message at Bob");
  // ephemeral: no offset, not kept.
  const eph = await sb.publish("typing", { on: true }, { ephemeral: true });
  assert.equal(eph.offset, null);
  await waitFor(() => ga.length === 2 && gb.length === 3, "the ephemeral message");
  assert.equal(ga[1].offset, null);
  assert.equal(ga[1].event, "typing");
  // retract: Bob hears of it.
  const retracted = new Promise((r) => sb.once("retracted", r));
  await sa.retract(1);
  assert.deepEqual(await retracted, { offset: 1, by: "ann" });
  // A late subscriber recovering from 0 sees the tombstone, then offset 2.
  const late = [];
  const c = newClient();
  const sc = c.subscribe(channel, (m) => late.push(m), { since: { offset: 0, epoch: "" } });
  await sc.ready;
  assert.deepEqual(late.map((m) => [m.offset, !!m.retracted]), [[1, true], [2, false]]);
  // Subscribing twice is a mistake; unsubscribing stops delivery.
  assert.throws(() => a.subscribe(channel, () => {}), /already subscribed/);
  await sb.unsubscribe();
  await sa.publish("message", { text: "after" });
  await waitFor(() => ga.length === 3, "Ann's own message");
  await sleep(50);
  assert.equal(gb.length, 3, "nothing after unsubscribe");
  await assert.rejects(newClient().subscribe("doc:x").ready, (err) => err.code === "bad_request");
});

test("presence: join, update, leave, and state kept across a reconnect", { skip }, async () => {
  const channel = uniq("chat:presence");
  const a = newClient({ user: "ann" });
  const b = newClient({ user: "bob" });
  const sa = a.subscribe(channel);
  await sa.ready;
  const list = () => [...sa.presence.members.values()];
  assert.ok(sa.presence.members instanceof Map, "members is a Map, as doc.members is");
  assert.deepEqual(list().map((m) => m.user.id), ["ann"]);
  assert.equal(list()[0].clientId, a.clientId, "camelCase");
  assert.equal(list()[0].client_id, a.clientId, "with the deprecated alias");
  const events = [];
  for (const e of ["join", "update", "leave"]) sa.presence.on(e, (m) => events.push([e, m.user.id, m.state]));
  const sb = b.subscribe(channel);
  const set = sb.presence.set({ typing: true }); // before subscribed: sent once it is
  await sb.ready;
  await set; // resolves once the server took it
  // The client asks for presence in batches: a state set right after the
  // join may come inside the join (a batch carries each member's latest
  // state), or as an update after it.
  const bobTyping = () => list().some((m) => m.user.id === "bob" && m.state?.typing === true);
  await waitFor(bobTyping, "Bob's state");
  assert.deepEqual(events[0].slice(0, 2), ["join", "bob"]);
  const seen = events.find((e) => e[0] === "update") ?? events[0];
  assert.deepEqual(seen[2], { typing: true });
  assert.ok(events.every((e) => e[0] !== "leave"), "an update is never a leave and a join");
  assert.equal(sa.presence.count, 2);
  // Bob's connection drops: he leaves, comes back, and his state with him.
  events.length = 0;
  b.reconnect();
  await waitFor(() => events.some((e) => e[0] === "leave") && events.some((e) => e[0] === "join") && bobTyping(),
    "Bob's leave, join and restored state");
  assert.equal(list().filter((m) => m.user.id === "bob").length, 1);
  assert.deepEqual(list().find((m) => m.user.id === "bob").state, { typing: true });
  await sb.unsubscribe();
  await waitFor(() => sa.presence.count === 1, "Bob gone");
});

test("read receipts: markRead reaches the others and new subscribers", { skip }, async () => {
  const channel = uniq("chat:receipts");
  const a = newClient({ user: "ann" });
  const b = newClient({ user: "bob" });
  const sa = a.subscribe(channel);
  const sb = b.subscribe(channel);
  await Promise.all([sa.ready, sb.ready]);
  for (let i = 0; i < 3; i++) await sa.publish("message", { i });
  const receipt = new Promise((r) => sa.on("receipt", (e) => e.user === "bob" && r(e)));
  await sb.markRead(2); // resolves once stored
  const e = await receipt;
  assert.equal(e.offset, 2);
  assert.ok(e.ts);
  assert.equal(sa.receipts.bob, 2);
  const c = newClient({ user: "cy" });
  const sc = c.subscribe(channel);
  await sc.ready;
  assert.equal(sc.receipts.bob, 2);
});

test("status events and close", { skip }, async () => {
  const seen = [];
  const c = newClient({ user: "ann" });
  c.on("status", (s) => seen.push(s));
  assert.equal(c.status, "connecting");
  await c.whenConnected();
  assert.ok(c.clientId);
  assert.equal(c.user.id, "ann");
  assert.ok((await c.ping()) >= 0);
  c.close();
  assert.deepEqual(seen, ["connected", "disconnected"]);
  await assert.rejects(c.whenConnected(), (err) => err.code === "closed");
  const bad = newClient({ url: "http://127.0.0.1:1", backoff: { min: 10, max: 20 } });
  await waitFor(() => bad.status === "connecting", "connecting");
  const d = newClient({ token: "not-a-dev-token" });
  await waitFor(() => d.status === "disconnected", "given up on a refused token");
});
