// Tokens against a server that verifies them ($TANDEM_AUTH_URL, signed with
// $TANDEM_JWT_SECRET; scripts/test-js.sh starts one): the token callback is
// asked again before expiry and after a refusal.
import test from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { connect, TandemError } from "../../../web/static/tandem.js";
import { sleep, waitFor } from "../support/helpers.mjs";

const URL_ = process.env.TANDEM_AUTH_URL ?? "";
const SECRET = process.env.TANDEM_JWT_SECRET ?? "";
const skip = URL_ && SECRET ? false : "TANDEM_AUTH_URL and TANDEM_JWT_SECRET are not set (run scripts/test-js.sh)";

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");

// mint signs an HS256 token for sub that expires in ttl seconds.
function mint(sub, ttl, allow = ["admin:*"]) {
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, name: sub.toUpperCase(), allow, iat: now, exp: now + ttl })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}

test("the token callback refreshes before expiry and the connection stays", { skip }, async () => {
  const tokens = [];
  const c = connect({
    url: URL_,
    storage: null,
    token: () => {
      tokens.push(mint("ann", 3));
      return tokens.at(-1);
    },
  });
  try {
    const drops = [];
    c.on("disconnect", (e) => drops.push(e));
    const refreshed = [];
    c.on("refreshed", () => refreshed.push(Date.now()));
    await c.whenConnected();
    assert.equal(c.user.id, "ann");
    assert.equal(c.user.name, "ANN");
    // The first token expires within three seconds; the server closes the
    // connection then (4001) unless a refresh came first.
    const exp = JSON.parse(Buffer.from(tokens[0].split(".")[1], "base64url")).exp * 1000;
    await sleep(exp - Date.now() + 500);
    assert.deepEqual(drops, [], "no disconnect");
    assert.ok(refreshed.length >= 1, `refreshed ${refreshed.length} times`);
    assert.ok(tokens.length >= 2);
    assert.equal(c.status, "connected");
    assert.ok((await c.ping()) >= 0);
  } finally {
    c.close();
  }
});

test("a refused token makes the client ask for another", { skip }, async () => {
  let calls = 0;
  const c = connect({
    url: URL_,
    storage: null,
    backoff: { min: 20, max: 50 },
    token: async () => (++calls === 1 ? mint("bob", -60) : mint("bob", 600)),
  });
  try {
    await waitFor(() => c.status === "connected", "connected with the second token");
    assert.equal(calls, 2);
    assert.equal(c.user.id, "bob");
  } finally {
    c.close();
  }
});

test("a static token that is refused gives up: whenConnected rejects with unauthorized and the close code, error fires once", { skip }, async () => {
  const c = connect({ url: URL_, storage: null, token: mint("cy", -60) });
  const errors = [];
  c.on("error", (e) => errors.push(e));
  const err = await c.whenConnected().then(
    () => assert.fail("connected with an expired token"),
    (e) => e,
  );
  assert.ok(err instanceof TandemError);
  assert.equal(err.code, "unauthorized");
  assert.equal(err.closeCode, 4001);
  assert.match(err.message, /expired/, "the server's reason");
  assert.equal(c.status, "disconnected");
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(errors.length, 1, `error fired ${errors.length} times`);
  assert.equal(errors[0], err);
  // Later calls get the same answer.
  await assert.rejects(c.whenConnected(), (e) => e.code === "unauthorized");
});

test("grants are enforced: a read-only token cannot edit", { skip }, async () => {
  const id = `ro-${process.pid}-${Date.now()}`;
  const w = connect({ url: URL_, storage: null, token: mint("writer", 600) });
  const r = connect({ url: URL_, storage: null, token: mint("reader", 600, [`read:doc:${id}`]) });
  try {
    const dw = w.openDoc(id);
    await dw.ready;
    dw.insert(0, "mine");
    await dw.synced();
    const dr = r.openDoc(id);
    await dr.ready;
    assert.equal(dr.text, "mine");
    const errors = [];
    dr.on("error", (e) => errors.push(e));
    const rejected = new Promise((res) => dr.on("change", (e) => e.origin === "rejected" && res(e)));
    dr.insert(0, "no ");
    await rejected;
    assert.equal(errors.length, 1, "reported once");
    assert.equal(errors[0].code, "forbidden");
    assert.deepEqual(errors[0].ops, [["no "]], "the refused edit");
    assert.equal(dr.text, "mine", "the text is the server's again");
    assert.equal(dr.pending, false, "nothing is sent again");
  } finally {
    w.close();
    r.close();
  }
});
