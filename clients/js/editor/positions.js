// positions.js: exact conversion between the UTF-16 indices editors count
// and the Unicode code points Tandem counts, and the small text helpers the
// editor bindings share (edits to ops, ops to splices, a minimal diff).
//
// Rules (docs/editors.md, "Positions"):
//   - a code point outside the Basic Multilingual Plane (an emoji such as
//     "😀") is one position in Tandem and two UTF-16 units (a surrogate
//     pair) in an editor; everything else is one and one;
//   - an emoji with a skin-tone modifier, a flag, a ZWJ sequence or a letter
//     with a combining mark is several code points, each converted alone:
//     Tandem does not know graphemes;
//   - a UTF-16 index between the two halves of a pair has no code point; it
//     rounds up, past the pair (as tandem.js's utf16ToCodePoint does);
//   - a lone surrogate counts one code point (and the server stores it as
//     U+FFFD, so bindings never send one).

const PAIR = /[\uD800-\uDBFF][\uDC00-\uDFFF]/g;

function isHigh(c) {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLow(c) {
  return c >= 0xdc00 && c <= 0xdfff;
}

/**
 * PositionIndex converts positions in one text between UTF-16 indices and
 * code points in O(log n), after an O(n) scan for surrogate pairs (none in
 * most texts: then both conversions are the identity).
 */
export class PositionIndex {
  /**
   * @param {string} text
   * @param {boolean} [noPairs] the caller knows text has no surrogate pair
   *   (its length in code points equals its length in UTF-16 units)
   */
  constructor(text, noPairs = false) {
    this.text = text;
    /** UTF-16 index of the high half of each surrogate pair, ascending. */
    const pairs = [];
    if (!noPairs) for (const m of text.matchAll(PAIR)) pairs.push(m.index);
    this.pairs = pairs;
    /** The text's length in code points. */
    this.length = text.length - pairs.length;
  }

  /**
   * Returns the code point at UTF-16 index i: how many code points start
   * before i. An index inside a pair rounds up; i is clamped to the text.
   */
  toCodePoint(i) {
    i = Math.min(Math.max(i | 0, 0), this.text.length);
    const p = this.pairs;
    if (p.length === 0) return i;
    // Each pair wholly before i (its start + 2 <= i) saves one unit.
    let lo = 0;
    let hi = p.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (p[mid] + 2 <= i) lo = mid + 1;
      else hi = mid;
    }
    return i - lo;
  }

  /** Returns the UTF-16 index of code point cp (clamped to the text). */
  toUTF16(cp) {
    cp = Math.min(Math.max(cp | 0, 0), this.length);
    const p = this.pairs;
    if (p.length === 0) return cp;
    // Pair k starts at code point p[k] - k; each one before cp adds a unit.
    let lo = 0;
    let hi = p.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (p[mid] - mid < cp) lo = mid + 1;
      else hi = mid;
    }
    return cp + lo;
  }

  /** Reports whether UTF-16 index i falls between the halves of a pair. */
  splitsPair(i) {
    const t = this.text;
    return i > 0 && i < t.length && isHigh(t.charCodeAt(i - 1)) && isLow(t.charCodeAt(i));
  }
}

/** Reports whether s has no lone surrogate (String.prototype.isWellFormed). */
export function isWellFormed(s) {
  if (typeof s.isWellFormed === "function") return s.isWellFormed();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isHigh(c) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i++;
    else if (isHigh(c) || isLow(c)) return false;
  }
  return true;
}

/**
 * Reports whether editing text with edits (parallel UTF-16 edits, see
 * editsToOp) maps exactly onto code points: no edit starts or ends inside a
 * surrogate pair and no inserted text holds a lone surrogate.
 */
export function editsExact(edits, index) {
  for (const e of edits) {
    if (index.splitsPair(e.from) || index.splitsPair(e.to) || !isWellFormed(e.insert)) return false;
  }
  return true;
}

/**
 * Returns the Tandem op (code points) for edits made to the text of index:
 * edits are [{from, to, insert}] in UTF-16 indices of that text, sorted and
 * not overlapping (all refer to the text before any of them, as a
 * CodeMirror ChangeSet or one Monaco content event does). The op may not be
 * canonical; Doc.submit and the OT functions take it as it is.
 */
export function editsToOp(edits, index) {
  const op = [];
  const push = (c) => {
    const last = op.length - 1;
    if (last >= 0) {
      const p = op[last];
      if (typeof c === "string" && typeof p === "string") return void (op[last] = p + c);
      if (typeof c === "number" && typeof p === "number" && c > 0 === p > 0) return void (op[last] = p + c);
    }
    op.push(c);
  };
  let at = 0;
  for (const e of edits) {
    const from = index.toCodePoint(e.from);
    const to = index.toCodePoint(e.to);
    if (from < at || to < from) throw new RangeError(`edits out of order at ${e.from}..${e.to}`);
    if (from > at) push(from - at);
    if (e.insert) push(e.insert);
    if (to > from) push(from - to);
    at = to;
  }
  while (op.length > 0 && typeof op[op.length - 1] === "number" && op[op.length - 1] > 0) op.pop();
  return op;
}

/**
 * Returns the UTF-16 splices that op (code points) makes of text, each
 * {index, deleteCount, text} in the text the previous ones left, left to
 * right (the form of a Doc "change" event's splices). Throws RangeError when
 * op reaches past the text.
 */
export function opToSplices(op, text, index = new PositionIndex(text)) {
  const out = [];
  let cp = 0; // code point reached in text
  let i = 0; // its UTF-16 index
  let shift = 0; // UTF-16 length change so far
  for (const c of op) {
    if (typeof c === "string") {
      const last = out[out.length - 1];
      if (last && last.index + last.text.length === i + shift && last.deleteCount === 0) last.text += c;
      else out.push({ index: i + shift, deleteCount: 0, text: c });
      shift += c.length;
      continue;
    }
    const n = Math.abs(c);
    if (cp + n > index.length) throw new RangeError(`op reaches ${cp + n} code points, text has ${index.length}`);
    const j = index.toUTF16(cp + n);
    if (c < 0) {
      const last = out[out.length - 1];
      if (last && last.index + last.text.length === i + shift) last.deleteCount += j - i;
      else out.push({ index: i + shift, deleteCount: j - i, text: "" });
      shift -= j - i;
    }
    cp += n;
    i = j;
  }
  return out;
}

/** Returns text with splices (sequential, UTF-16) applied one after the other. */
export function applySplices(text, splices) {
  for (const s of splices) {
    if (s.index < 0 || s.index + s.deleteCount > text.length) throw new RangeError(`splice ${s.index}+${s.deleteCount} outside ${text.length}`);
    text = text.slice(0, s.index) + s.text + text.slice(s.index + s.deleteCount);
  }
  return text;
}

/** Returns text with parallel edits ([{from, to, insert}], sorted) applied. */
export function applyEdits(text, edits) {
  let out = "";
  let at = 0;
  for (const e of edits) {
    out += text.slice(at, e.from) + e.insert;
    at = e.to;
  }
  return out + text.slice(at);
}

/**
 * Returns the one splice {index, deleteCount, text} (UTF-16) that takes
 * text a to text b: the common prefix and suffix kept, the middle replaced,
 * never cutting a surrogate pair in two; null when a === b.
 */
export function diff(a, b) {
  if (a === b) return null;
  const max = Math.min(a.length, b.length);
  let p = 0;
  while (p < max && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  if (p > 0 && isHigh(a.charCodeAt(p - 1))) p--;
  let s = 0;
  while (s < max - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++;
  if (s > 0 && isLow(a.charCodeAt(a.length - s))) s--;
  return { index: p, deleteCount: a.length - s - p, text: b.slice(p, b.length - s) };
}
