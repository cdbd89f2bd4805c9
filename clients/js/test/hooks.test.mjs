// The application's hooks (docs/hooks.md) against a server that calls them
// ($TANDEM_HOOKS_URL; scripts/test-js.sh starts one whose hooks post to
// 127.0.0.1:$TANDEM_HOOKS_BACKEND_PORT, signed with $TANDEM_HOOKS_SECRET):
// this file runs the backend, a node:http server that checks every
// signature, and drives the server with the client: connect's data and
// refusal, subscribe's data, rpc's answers and errors.
import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import { connect, TandemError } from "../../../web/static/tandem.js";

const URL_ = process.env.TANDEM_HOOKS_URL ?? "";
const PORT = Number(process.env.TANDEM_HOOKS_BACKEND_PORT ?? 0);
const SECRET = process.env.TANDEM_HOOKS_SECRET ?? "";
const skip = URL_ && PORT && SECRET ? false : "TANDEM_HOOKS_URL, TANDEM_HOOKS_BACKEND_PORT and TANDEM_HOOKS_SECRET are not set (run scripts/test-js.sh)";

let badSignatures = 0;

// verify checks a request's signature as docs/webhooks.md says: the hex
// HMAC-SHA256 of "timestamp.body", within five minutes.
function verify(req, body) {
  const ts = req.headers["x-tandem-timestamp"] ?? "";
  const sig = Buffer.from(req.headers["x-tandem-signature"] ?? "");
  const want = Buffer.from("sha256=" + createHmac("sha256", SECRET).update(`${ts}.`).update(body).digest("hex"));
  return sig.length === want.length && timingSafeEqual(sig, want) && Math.abs(Date.now() / 1000 - Number(ts)) < 300;
}

// answer is the backend's decision for one hook request.
function answer(hook, req) {
  switch (hook) {
    case "connect":
      if (req.token === "banned") return { error: { code: "forbidden", message: "banned from this app" } };
      return { user: { id: req.token || "anon", name: "From the app" }, grants: ["subscribe:*", "publish:*"], data: { plan: "pro" } };
    case "subscribe":
      if (req.channel === "hooked:closed") return { error: { message: "members only" } };
      return { data: { role: "reader", channel: req.channel } };
    case "rpc":
      if (req.method === "math.add") return { data: { sum: req.data.a + req.data.b } };
      if (req.method === "math.secret") return { error: { code: "forbidden", message: "not for you" } };
      return { error: { message: `no method ${req.method}` } };
  }
  return {};
}

let server;
before(async () => {
  if (skip) return;
  server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (!verify(req, body)) {
        badSignatures++;
        res.writeHead(401).end("bad signature");
        return;
      }
      const out = answer(req.headers["x-tandem-hook"], JSON.parse(body.toString("utf8")));
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(out));
    });
  });
  await new Promise((resolve) => server.listen(PORT, "127.0.0.1", resolve));
});
// Every test is over: drop the server's connections too, so that a
// keep-alive connection of the Tandem server's hook client cannot keep this
// process (and the file's test) running.
after(() => {
  server?.close();
  server?.closeAllConnections();
});

function client(token) {
  return connect({ url: URL_, storage: null, token, backoff: { min: 20, max: 200 } });
}

test("connect: the application's user and data", { skip }, async () => {
  const c = client("ann");
  try {
    let info = null;
    c.on("connected", (i) => (info = i));
    await c.whenConnected();
    assert.equal(c.user.id, "ann");
    assert.equal(c.user.name, "From the app");
    assert.deepEqual(c.data, { plan: "pro" });
    assert.deepEqual(info.data, { plan: "pro" });
  } finally {
    c.close();
  }
});

test("connect: the application's refusal and its reason", { skip }, async () => {
  const c = client("banned");
  const errors = [];
  c.on("error", (e) => errors.push(e));
  await assert.rejects(c.whenConnected(), (err) => {
    assert.ok(err instanceof TandemError);
    assert.equal(err.message, "banned from this app");
    assert.equal(err.closeCode, 4001);
    assert.equal(err.frame?.code, "forbidden");
    return true;
  });
  assert.equal(c.status, "disconnected");
  c.close();
});

test("subscribe: the application's data, and its refusal", { skip }, async () => {
  const c = client("bob");
  try {
    const sub = c.subscribe("hooked:1");
    let seen = null;
    sub.on("subscribed", (e) => (seen = e.data));
    await sub.ready;
    assert.deepEqual(sub.data, { role: "reader", channel: "hooked:1" });
    assert.deepEqual(seen, sub.data);
    const closed = c.subscribe("hooked:closed");
    await assert.rejects(closed.ready, (err) => err.code === "forbidden" && err.message === "members only");
  } finally {
    c.close();
  }
});

test("rpc: answers, refusals, unknown methods", { skip }, async () => {
  const c = client("cy");
  try {
    assert.deepEqual(await c.rpc("math.add", { a: 2, b: 3 }), { sum: 5 });
    await assert.rejects(c.rpc("math.secret"), (err) => err instanceof TandemError && err.code === "forbidden" && err.message === "not for you");
    await assert.rejects(c.rpc("math.nope", {}), (err) => err.code === "not_found" && err.message === "no method math.nope");
    await assert.rejects(c.rpc("no spaces allowed"), (err) => err.code === "bad_request");
    // Several at once: each answer finds its call.
    const sums = await Promise.all([1, 2, 3, 4].map((n) => c.rpc("math.add", { a: n, b: n })));
    assert.deepEqual(sums.map((s) => s.sum), [2, 4, 6, 8]);
    assert.equal(badSignatures, 0);
  } finally {
    c.close();
  }
});
