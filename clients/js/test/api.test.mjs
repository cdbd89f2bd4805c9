// The module as shipped: the server serves it at /tandem.js, and
// tandem.d.ts declares exactly what it exports.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as tandem from "../../../web/static/tandem.js";
import { SERVER, skip } from "../support/helpers.mjs";

const dir = new URL("../../../web/static/", import.meta.url);

test("tandem.d.ts declares every export and nothing else", () => {
  const dts = readFileSync(new URL("tandem.d.ts", dir), "utf8");
  const declared = new Set([...dts.matchAll(/^export (?:const|function|class) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual([...declared].sort(), Object.keys(tandem).sort());
  for (const name of Object.keys(tandem.ot)) assert.match(dts, new RegExp(`^  ${name}: typeof ${name};$`, "m"), `ot.${name}`);
});

test("the server serves the client", { skip }, async () => {
  const res = await fetch(new URL("/tandem.js", SERVER));
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /javascript/);
  assert.equal(await res.text(), readFileSync(new URL("tandem.js", dir), "utf8"));
  const dts = await fetch(new URL("/tandem.d.ts", SERVER));
  assert.equal(dts.status, 200);
});
