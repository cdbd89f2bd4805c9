// Large edits and refusals: a local edit of any size is sent as ops whose
// encoded frames fit the server's limits (issue 13, "A normal user action
// that cuts the user off"), and an op the server refuses for good is rolled
// back and reported once, never sent again in a loop.
import test from "node:test";
import assert from "node:assert/strict";
import { apply, connect, opJSONLength, splitOp, utf8Length, DEFAULT_LIMITS } from "../../../web/static/tandem.js";
import { newClient, skip, uniq, waitFor } from "../support/helpers.mjs";

// A small PRNG, so that a failure can be replayed from its seed.
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

// Characters whose JSON or UTF-8 form is larger than one byte: escapes of
// six bytes (\u0001), of two (\n, ", \), 2-, 3- and 4-byte UTF-8, and the
// characters other encoders escape (<, U+2028).
const ALPHABET = ["a", "<", ">", "&", "\n", "\t", '"', "\\", "\u0001", "\u001f", "é", "€", "\u2028", "😀", "👍🏽", "e\u0301"];

function randomText(r, n) {
  let s = "";
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

test("opJSONLength and utf8Length measure what JSON.stringify and UTF-8 give", () => {
  const r = rng(7);
  for (let i = 0; i < 300; i++) {
    const s = randomText(r, Math.floor(r() * 40) + 1);
    assert.equal(utf8Length(s), Buffer.byteLength(s), JSON.stringify(s));
    const op = [Math.floor(r() * 1e6) + 1, s, -(Math.floor(r() * 99) + 1)];
    assert.equal(opJSONLength(op), Buffer.byteLength(JSON.stringify(op)), JSON.stringify(op));
  }
});

test("splitOp cuts any op into pieces under both limits that do what it does", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const r = rng(seed);
    const base = randomText(r, Math.floor(r() * 60));
    // A random canonical op on base: retains, inserts and deletes.
    const comps = [];
    let left = [...base].length;
    while (left > 0 || comps.length === 0) {
      const k = r();
      if (k < 0.4 && left > 0) {
        const n = 1 + Math.floor(r() * left);
        comps.push(n);
        left -= n;
      } else if (k < 0.8) comps.push(randomText(r, 1 + Math.floor(r() * 200)));
      else if (left > 0) {
        const n = 1 + Math.floor(r() * left);
        comps.push(-n);
        left -= n;
      }
      if (left === 0 && comps.length > 0) break;
    }
    const op = normalizeLocal(comps);
    const limits = { maxInsertBytes: 8 + Math.floor(r() * 100), maxJSONBytes: 24 + Math.floor(r() * 200) };
    const pieces = splitOp(op, limits);
    let text = base;
    for (const p of pieces) {
      const ins = p.filter((c) => typeof c === "string").reduce((n, c) => n + Buffer.byteLength(c), 0);
      assert.ok(Buffer.byteLength(JSON.stringify(p)) <= limits.maxJSONBytes, `seed ${seed}: piece ${JSON.stringify(p)} over ${limits.maxJSONBytes} JSON bytes`);
      assert.ok(ins <= limits.maxInsertBytes, `seed ${seed}: piece inserts ${ins} bytes, limit ${limits.maxInsertBytes}`);
      text = apply(text, p);
    }
    assert.equal(text, apply(base, op), `seed ${seed}: the pieces do not do what the op does`);
  }
});

// normalizeLocal builds the canonical form of comps (inserts before deletes).
function normalizeLocal(comps) {
  const out = [];
  for (const c of comps) {
    const p = out.at(-1);
    if (typeof c === "string" && typeof p === "number" && p < 0) {
      if (typeof out.at(-2) === "string") out[out.length - 2] += c;
      else out.splice(out.length - 1, 0, c);
    } else if (typeof c === "string" && typeof p === "string") out[out.length - 1] += c;
    else if (typeof c === "number" && typeof p === "number" && c > 0 === p > 0) out[out.length - 1] += c;
    else out.push(c);
  }
  if (typeof out.at(-1) === "number" && out.at(-1) > 0) out.pop();
  return out;
}

// MeteredWS is Node's WebSocket that records the size of every frame sent.
const sentSizes = [];
class MeteredWS extends globalThis.WebSocket {
  send(data) {
    sentSizes.push(Buffer.byteLength(data));
    super.send(data);
  }
}

test("a 1 MB paste reaches another client as ops whose frames fit the limits", { skip, timeout: 60000 }, async () => {
  const id = uniq("paste");
  const a = newClient({ WebSocket: MeteredWS });
  const b = newClient();
  const da = a.openDoc(id);
  const db = b.openDoc(id);
  await Promise.all([da.ready, db.ready]);
  assert.deepEqual(a.limits, { maxFrameBytes: 65536, maxOpBytes: 65536, maxDocLen: 4000000 }, "the server's limits, from connected");
  // 1 MB of text, a third of it escaped six-fold in JSON (\u0001).
  const r = rng(99);
  let paste = "";
  while (paste.length < 1 << 20) paste += randomText(r, 64) + "\u0001\u0002<tag>\n";
  da.insert(0, "start ");
  sentSizes.length = 0;
  da.insert(6, paste);
  da.insert(0, "» "); // typed while the paste goes out
  await da.synced();
  const want = "» start " + paste;
  await waitFor(() => db.text === want, "the paste at the other client", 30000);
  assert.equal(da.text, want);
  const max = Math.max(...sentSizes);
  assert.ok(max <= a.limits.maxFrameBytes, `a frame of ${max} bytes was sent, the limit is ${a.limits.maxFrameBytes}`);
  assert.ok(sentSizes.length > 16, `the paste went in ${sentSizes.length} frames`);
  assert.equal(a.status, "connected");
});

// FakeWS is a WebSocket the test plays the server of, with limits.
class FakeWS {
  static all = [];
  static limits = undefined;
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
    f.bytes = Buffer.byteLength(data);
    this.sent.push(f);
    if (f.type === "connect") {
      this.recv({ id: f.id, type: "connected", client_id: `c${FakeWS.all.length}`, user: { id: "me", name: "Me", color: "#000" }, ping_interval: 25, server: "fake", limits: FakeWS.limits });
    }
  }
  close() {
    this.readyState = 3;
  }
  recv(...frames) {
    this.onmessage?.({ data: frames.map((f) => JSON.stringify(f)).join("\n") });
  }
  ops() {
    return this.sent.filter((f) => f.type === "op");
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5));

async function setup(limits, content = "abc") {
  FakeWS.all = [];
  FakeWS.limits = limits;
  const client = connect({ url: "http://fake", WebSocket: FakeWS, storage: null, backoff: { min: 1, max: 2 } });
  await client.whenConnected();
  const ws = FakeWS.all[0];
  const doc = client.openDoc("d");
  await tick();
  const open = ws.sent.find((f) => f.type === "open");
  ws.recv({ id: open.id, type: "snapshot", doc: "d", version: 0, content, comments: [], members: [], cursors: [] });
  await doc.ready;
  return { client, doc, ws };
}

test("the client splits by the limits the server announces, and by the defaults without them", async () => {
  for (const [limits, frame, op] of [
    [{ max_frame_bytes: 600, max_op_bytes: 100000, max_doc_len: 10 }, 600, 100000],
    [{ max_frame_bytes: 100000, max_op_bytes: 300 }, 100000, 300],
    [undefined, DEFAULT_LIMITS.maxFrameBytes, DEFAULT_LIMITS.maxOpBytes],
  ]) {
    const { client, doc, ws } = await setup(limits);
    try {
      assert.equal(client.limits.maxFrameBytes, frame);
      assert.equal(client.limits.maxOpBytes, op);
      const text = "\u0001é😀<".repeat(limits ? 2000 : 20000);
      doc.insert(1, text);
      // Ack each op as the server would, until everything is acked.
      for (let v = 0; doc.pending; v++) {
        await waitFor(() => ws.ops().length > v, `op ${v}`);
        const o = ws.ops()[v];
        assert.ok(o.bytes <= frame, `frame of ${o.bytes} bytes over ${frame}`);
        const ins = o.op.filter((c) => typeof c === "string").reduce((n, c) => n + Buffer.byteLength(c), 0);
        assert.ok(ins <= op, `op inserts ${ins} bytes, over ${op}`);
        assert.equal(o.version, v, "one op in flight at a time, each on the last");
        ws.recv({ id: o.id, type: "ack", doc: "d", version: v, uid: o.uid });
      }
      assert.equal(doc.text, "a" + text + "bc");
      assert.ok(ws.ops().length > 1);
    } finally {
      client.close();
    }
  }
});

test("an op refused for good is rolled back and reported once, and later edits still go", async () => {
  const { client, doc, ws } = await setup({ max_frame_bytes: 65536, max_op_bytes: 65536, max_doc_len: 10 });
  try {
    const errors = [];
    const changes = [];
    doc.on("error", (e) => errors.push(e));
    doc.on("change", (e) => changes.push(e));
    doc.insert(3, "defghijklmn"); // in flight
    doc.insert(0, ">"); // buffered behind it
    await tick();
    const o = ws.ops()[0];
    ws.recv({ id: o.id, type: "error", doc: "d", code: "too_large", message: "document would have 14 code points, at most 10" });
    await tick();
    assert.equal(errors.length, 1, "one error");
    assert.equal(errors[0].code, "too_large");
    assert.deepEqual(errors[0].ops, [[3, "defghijklmn"]]);
    assert.equal(doc.text, ">abc", "the refused insert is gone, the later edit stays");
    assert.equal(changes.at(-1).origin, "rejected");
    // The buffered edit is sent next, moved over the rollback; the refused
    // one never again.
    await waitFor(() => ws.ops().length === 2, "the next op");
    assert.deepEqual(ws.ops()[1].op, [">"]);
    assert.equal(ws.ops()[1].version, 0);
    ws.recv({ id: ws.ops()[1].id, type: "ack", doc: "d", version: 0, uid: ws.ops()[1].uid });
    await doc.synced();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ws.ops().length, 2, "nothing is resent");
    assert.equal(errors.length, 1);
    assert.equal(FakeWS.all.length, 1, "the connection stays up");
  } finally {
    client.close();
  }
});

test("when a piece of a split edit is refused, the rest of that edit is rolled back with it", async () => {
  const { client, doc, ws } = await setup({ max_frame_bytes: 400, max_op_bytes: 100, max_doc_len: 250 });
  try {
    const errors = [];
    doc.on("error", (e) => errors.push(e));
    const paste = "x".repeat(500);
    doc.insert(3, paste);
    await waitFor(() => ws.ops().length === 1, "the first piece");
    let o = ws.ops()[0];
    assert.equal(o.op[1].length, 100);
    ws.recv({ id: o.id, type: "ack", doc: "d", version: 0, uid: o.uid });
    await waitFor(() => ws.ops().length === 2, "the second piece");
    o = ws.ops()[1];
    ws.recv({ id: o.id, type: "error", doc: "d", code: "too_large", message: "document would have 203 code points, at most 250" });
    await tick();
    assert.equal(errors.length, 1, "one error for the whole edit");
    assert.equal(doc.text, "abc" + "x".repeat(100), "what the server took stays; the rest is rolled back");
    assert.equal(doc.pending, false);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ws.ops().length, 2, "no piece is sent after the refusal");
  } finally {
    client.close();
  }
});

test("transient refusals are retried with a growing delay", async () => {
  const { client, doc, ws } = await setup(undefined);
  try {
    doc.insert(0, "x");
    const times = [];
    for (let i = 0; i < 3; i++) {
      await waitFor(() => ws.ops().length > i, `try ${i}`, 5000);
      times.push(Date.now());
      const o = ws.ops()[i];
      ws.recv({ id: o.id, type: "error", doc: "d", code: "rate_limited", message: "slow down" });
    }
    await waitFor(() => ws.ops().length > 3, "the fourth try", 10000);
    const o = ws.ops()[3];
    assert.equal(o.uid, ws.ops()[0].uid, "the same op, with its uid");
    ws.recv({ id: o.id, type: "ack", doc: "d", version: 0, uid: o.uid });
    await doc.synced();
    assert.equal(doc.text, "xabc");
    assert.ok(times[2] - times[1] >= 250, `the second retry waited ${times[2] - times[1]} ms`);
  } finally {
    client.close();
  }
});

test("a server that closes with a 4xxx code at once is retried ever more slowly", async () => {
  let opened = 0;
  class Closer {
    constructor() {
      this.readyState = 0;
      opened++;
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen?.();
      });
    }
    send(data) {
      const f = JSON.parse(data);
      if (f.type === "connect") {
        this.onmessage?.({ data: JSON.stringify({ id: f.id, type: "connected", client_id: "c", user: { id: "u", name: "U", color: "#000" }, ping_interval: 25, server: "fake" }) });
        setTimeout(() => {
          this.readyState = 3;
          this.onclose?.({ code: 4029, reason: "too many connections" });
        }, 1);
      }
    }
    close() {
      this.readyState = 3;
    }
  }
  const client = connect({ url: "http://fake", WebSocket: Closer, storage: null, backoff: { min: 20, max: 5000 } });
  try {
    await new Promise((r) => setTimeout(r, 700));
    // With the backoff reset at every connect this would be about 700/15;
    // growing, 20+40+80+160+320 ms fit in 700 ms: at most 6 tries.
    assert.ok(opened <= 7, `${opened} connections in 700 ms`);
    assert.ok(opened >= 3, `${opened} connections in 700 ms`);
  } finally {
    client.close();
  }
});


test("a connection that stops answering while an op waits for its ack is dropped within ackTimeout", async () => {
  FakeWS.all = [];
  FakeWS.limits = undefined;
  const client = connect({ url: "http://fake", WebSocket: FakeWS, storage: null, backoff: { min: 5000, max: 5000 }, ackTimeout: 400 });
  try {
    await client.whenConnected();
    const ws = FakeWS.all[0];
    const doc = client.openDoc("d");
    await tick();
    const open = ws.sent.find((f) => f.type === "open");
    ws.recv({ id: open.id, type: "snapshot", doc: "d", version: 0, content: "", comments: [], members: [], cursors: [] });
    await doc.ready;
    const drops = [];
    client.on("status", (s, d) => s === "reconnecting" && drops.push(d));
    const t0 = Date.now();
    doc.insert(0, "x"); // the fake server never answers it, nor pings
    await waitFor(() => drops.length > 0, "the drop", 3000);
    const took = Date.now() - t0;
    assert.ok(took >= 400 && took < 1500, `dropped after ${took} ms`);
    assert.equal(drops[0].reason, "the server stopped answering");
    assert.ok(ws.sent.some((f) => f.type === "ping"), "it pinged first");
  } finally {
    client.close();
  }
});

test("offline and pagehide close the socket at once; online and pageshow reconnect", async () => {
  const target = new EventTarget();
  const saved = {};
  for (const k of ["addEventListener", "removeEventListener"]) {
    saved[k] = globalThis[k];
    globalThis[k] = target[k].bind(target);
  }
  FakeWS.all = [];
  FakeWS.limits = undefined;
  const client = connect({ url: "http://fake", WebSocket: FakeWS, storage: null, backoff: { min: 60000, max: 60000 } });
  try {
    await client.whenConnected();
    target.dispatchEvent(new Event("offline"));
    assert.equal(client.status, "reconnecting", "offline noticed at once");
    target.dispatchEvent(new Event("online"));
    await client.whenConnected();
    assert.equal(FakeWS.all.length, 2, "online reconnects at once, whatever the backoff");
    target.dispatchEvent(new Event("pagehide"));
    assert.equal(client.status, "reconnecting");
    assert.equal(FakeWS.all[1].readyState, 3, "the socket is closed");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(FakeWS.all.length, 2, "no reconnection while hidden");
    target.dispatchEvent(new Event("pageshow"));
    await client.whenConnected();
    assert.equal(FakeWS.all.length, 3, "pageshow reconnects");
  } finally {
    client.close();
    for (const k of Object.keys(saved)) globalThis[k] = saved[k];
  }
});
