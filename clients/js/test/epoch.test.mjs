// Document incarnations: a document deleted and created again under the
// same id while a client is away is not mistaken for the one it had.
import test from "node:test";
import assert from "node:assert/strict";
import { SERVER, newClient, skip, startProxy, uniq, waitFor } from "../support/helpers.mjs";

test("a reopen after the document was deleted and created again resets to the new one", { skip }, async () => {
  const id = uniq("reborn");
  const proxy = await startProxy();
  const c = newClient({ url: proxy.url });
  const d = c.openDoc(id);
  await d.ready;
  d.insert(0, "hello");
  await d.synced();
  const oldEpoch = d.epoch;
  assert.ok(oldEpoch, "an epoch after the snapshot");
  const resets = [];
  d.on("reset", (e) => resets.push(e));

  await proxy.down();
  d.insert(5, "!"); // pending against the document about to be deleted
  const del = await fetch(`${SERVER}/api/docs/${encodeURIComponent(id)}`, { method: "DELETE" });
  assert.equal(del.status, 204);
  const other = newClient();
  const od = other.openDoc(id);
  await od.ready;
  for (const [i, ch] of [..."abcdef"].entries()) {
    od.insert(i, ch); // one op each: the new document passes the old version
    await od.synced();
  }
  assert.ok(od.version > d.version, `new document at v${od.version}, the client at v${d.version}`);

  await proxy.up();
  await waitFor(() => resets.length > 0, "the reset");
  assert.equal(resets[0].reason, "epoch");
  assert.equal(resets[0].lost.length, 1, "the pending edit of the old document is given up");
  assert.equal(d.text, "abcdef");
  assert.equal(d.version, od.version);
  assert.equal(d.epoch, od.epoch);
  assert.notEqual(d.epoch, oldEpoch);
  d.insert(6, "!");
  await d.synced();
  await waitFor(() => od.text === "abcdef!", "the other client to see the edit");
});
