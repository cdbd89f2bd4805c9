// The JS OT engine against the Go one: ot-table.json holds cases computed by
// the server's Go package ot (see clients/js/README.md); every result must be
// identical component for component.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  apply, compose, invert, normalize, transform, transformIndex, transformRange, transformSelection, splice,
  isCanonical, codePointLength, codePointToUtf16, utf16ToCodePoint, wellFormed, OpError, OpBuilder,
} from "../../../web/static/tandem.js";

const table = JSON.parse(readFileSync(new URL("./ot-table.json", import.meta.url), "utf8"));

// same compares two ops as the JSON the wire carries.
function same(got, want, what) {
  assert.equal(JSON.stringify(got), JSON.stringify(want), what);
}

test("transform matches Go, both results canonical", () => {
  for (const c of table.transform) {
    const [a2, b2] = transform(c.a, c.b);
    same(a2, c.a2, `transform(${JSON.stringify(c.a)}, ${JSON.stringify(c.b)}) a2`);
    same(b2, c.b2, `transform(${JSON.stringify(c.a)}, ${JSON.stringify(c.b)}) b2`);
    assert.ok(isCanonical(a2) && isCanonical(b2));
    // TP1 on the case's text.
    assert.equal(apply(apply(c.text, c.a), b2), apply(apply(c.text, c.b), a2));
  }
});

test("compose matches Go", () => {
  for (const c of table.compose) {
    const ab = compose(c.a, c.b);
    same(ab, c.ab, `compose(${JSON.stringify(c.a)}, ${JSON.stringify(c.b)})`);
    assert.equal(apply(c.text, ab), c.out);
  }
});

test("normalize matches Go's decoder", () => {
  for (const c of table.normalize) same(normalize(c.in), c.out, `normalize(${JSON.stringify(c.in)})`);
  for (const c of table.decode_errors) {
    let value;
    try {
      value = JSON.parse(c.in);
    } catch {
      continue;
    }
    assert.equal(c.error, true);
    assert.throws(() => normalize(value), OpError, c.in);
  }
});

test("invert, apply and splice match Go", () => {
  for (const c of table.invert) {
    const inv = invert(c.op, c.base);
    same(inv, c.inv, `invert(${JSON.stringify(c.op)}, ${JSON.stringify(c.base)})`);
    assert.equal(apply(apply(c.base, c.op), inv), c.base);
  }
  for (const c of table.apply) assert.equal(apply(c.text, c.op), c.out);
  for (const c of table.apply_errors) {
    if (c.error) assert.throws(() => apply(c.text, c.op), OpError, JSON.stringify(c));
    else apply(c.text, c.op);
  }
  for (const c of table.splice) same(splice(c.pos, c.del, c.ins), c.out, JSON.stringify(c));
});

test("cursor and range transforms match Go", () => {
  for (const c of table.index) assert.equal(transformIndex(c.op, c.index, c.own), c.out, JSON.stringify(c));
  for (const c of table.range) assert.deepEqual(transformRange(c.op, { from: c.from, to: c.to }), c.out, JSON.stringify(c));
  const s = transformSelection(["ab"], { anchor: 0, head: 0 }, true);
  assert.deepEqual(s, { anchor: 2, head: 2 });
});

test("builder keeps ops canonical", () => {
  const op = new OpBuilder().retain(2).delete(1).insert("x").retain(0).insert("y").retain(3).op();
  same(op, [2, "xy", -1]);
  same(normalize([2, -1, "x"]), [2, "x", -1]);
  same(normalize([1, 2, "a", "b", -1, -2, 4]), [3, "ab", -3]);
});

test("code points and UTF-16 indices convert both ways", () => {
  const s = "a😀b👩🏽c\u{1D11E}é"; // astral chars take two UTF-16 units
  assert.equal(codePointLength(s), 8);
  assert.equal(s.length, 12);
  const cps = [...s];
  let i16 = 0;
  for (let cp = 0; cp <= cps.length; cp++) {
    assert.equal(codePointToUtf16(s, cp), i16, `cp ${cp}`);
    assert.equal(utf16ToCodePoint(s, i16), cp, `utf16 ${i16}`);
    if (cp < cps.length) i16 += cps[cp].length;
  }
  assert.equal(codePointToUtf16(s, 99), s.length);
  assert.equal(utf16ToCodePoint(s, 2), 2, "inside a pair rounds up");
  assert.equal(wellFormed("a\ud800b\udc00"), "a\ufffdb\ufffd");
  assert.equal(wellFormed("😀"), "😀");
  assert.equal(apply("😀😀", [1, "x", -1]), "😀x");
});
