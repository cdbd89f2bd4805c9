// tandem.js: the Tandem client for browsers and Node, as one dependency-free
// ES module. The server serves it at /tandem.js; docs/js-client.md is its
// reference and docs/PROTOCOL.md the wire contract it speaks.
//
//   import { connect } from "/tandem.js";
//   const client = connect({ url: "https://tandem.example.com", token });
//   const chat = client.subscribe("chat:42", (m) => console.log(m.data));
//   const doc = client.openDoc("notes-1");
//   await doc.ready;
//   doc.insert(0, "hello");
//
// Positions and lengths in documents count Unicode code points, as the
// protocol does; codePointToUtf16 and utf16ToCodePoint (and the document's
// toUTF16 / fromUTF16) convert from and to JavaScript string indices.
//
// The OT functions (transform, compose, invert, ...) give results identical,
// component for component, to the server's Go package `ot`; the tests check
// them against a table produced by the Go code.
//
// The file reads top to bottom in the order of the Go packages it mirrors;
// each part starts with a rule of dashes and its number:
//
//   1. Code points and UTF-16        positions, as package ot counts them
//   2. Operations                    package ot: canonical ops, apply,
//                                    transform, compose, invert, cursors
//   3. Sizes on the wire             splitting an edit under the server's
//                                    limits (client/limits.go)
//   4. Events                        the emitter every object below is
//   5. Client                        the connection: connect, requests and
//                                    replies, reconnection with backoff
//                                    (client/client.go, conn.go)
//   6. Channels                      subscriptions, recovery, presence
//                                    (client/subscription.go)
//   7. Documents                     the OT client state machine: one op in
//                                    flight, a buffer composed behind it,
//                                    acks, remote ops transformed over both,
//                                    reopening by version and epoch, undo,
//                                    cursors (client/document.go, docsync.go)
//   8. Comments                      (client/comment.go)

/** The client's name as it introduces itself in the connect frame. */
export const CLIENT_NAME = "tandem-js/1";

/**
 * TandemError is every failure the client reports, thrown, rejected or
 * emitted: an error frame from the server (code bad_request, forbidden,
 * not_found, too_large, ...), a connection refused or closed (unauthorized,
 * closed, disconnected; closeCode then has the WebSocket close code), or a
 * misuse of the API (invalid_op, already_subscribed, already_open,
 * invalid_options, not_ready).
 */
export class TandemError extends Error {
  constructor(code, message, frame) {
    super(message || code);
    this.name = "TandemError";
    /** The protocol's error code, or the client's own. */
    this.code = code;
    /** The error frame, when the server sent one. */
    this.frame = frame;
  }
}

/** The longest retain or delete the server accepts. */
const MAX_COMPONENT = 2147483647;

// ---------------------------------------------------------------------------
// 1. Code points and UTF-16

function isHigh(c) {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLow(c) {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Returns the number of code points in s (a lone surrogate counts one). */
export function codePointLength(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i++;
    n++;
  }
  return n;
}

/**
 * Returns the UTF-16 index in s of code point cp. A cp past the end gives
 * s.length.
 */
export function codePointToUtf16(s, cp) {
  let i = 0;
  for (; cp > 0 && i < s.length; cp--) {
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i += 2;
    else i++;
  }
  return i;
}

/**
 * Returns the code-point index of UTF-16 index i in s: how many code points
 * start before i. An index between the two halves of a surrogate pair
 * rounds up, past the pair.
 */
export function utf16ToCodePoint(s, i) {
  const end = Math.min(Math.max(i, 0), s.length);
  let n = 0;
  for (let j = 0; j < end; j++) {
    if (isHigh(s.charCodeAt(j)) && j + 1 < s.length && isLow(s.charCodeAt(j + 1))) j++;
    n++;
  }
  return n;
}

/**
 * Returns s with every lone surrogate replaced by U+FFFD, which is what the
 * server would make of it: inserts are sent in this form so that client and
 * server hold the same text.
 */
export function wellFormed(s) {
  let out = null;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isHigh(c) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) {
      i++;
      continue;
    }
    if (isHigh(c) || isLow(c)) {
      if (out === null) out = s.split("");
      out[i] = "\ufffd";
    }
  }
  return out === null ? s : out.join("");
}

// ---------------------------------------------------------------------------
// 2. Operations: arrays of n (retain), "s" (insert) and -n (delete), counting
// code points, always canonical (see docs/PROTOCOL.md, Operations).

/** An op that is malformed or does not fit the text: a TandemError with code invalid_op. */
export class OpError extends TandemError {
  constructor(message) {
    super("invalid_op", message);
    this.name = "OpError";
  }
}

function checkComponents(op, name = "op") {
  if (!Array.isArray(op)) throw new OpError(`${name} is not an array`);
  for (let i = 0; i < op.length; i++) {
    const c = op[i];
    if (typeof c === "string") {
      if (c === "") throw new OpError(`${name} component ${i}: empty insert`);
    } else if (typeof c === "number" && Number.isInteger(c)) {
      if (c === 0) throw new OpError(`${name} component ${i}: zero-length component`);
      if (c > MAX_COMPONENT || c < -MAX_COMPONENT) throw new OpError(`${name} component ${i}: too large`);
    } else {
      throw new OpError(`${name} component ${i}: not an integer or a string`);
    }
  }
}

/**
 * Builder assembles a canonical op one component at a time, exactly as the
 * Go ot.Builder does: zero-length components are ignored, adjacent
 * components of one kind merged, an insert that follows a delete moved in
 * front of it, and a trailing retain dropped by op().
 */
export class OpBuilder {
  constructor() {
    this.ops = [];
  }
  retain(n) {
    if (n > 0) this._add(n);
    return this;
  }
  insert(s) {
    if (s !== "") this._add(s);
    return this;
  }
  delete(n) {
    if (n > 0) this._add(-n);
    return this;
  }
  _add(c) {
    const ops = this.ops;
    const last = ops.length - 1;
    if (last < 0) {
      ops.push(c);
      return;
    }
    const p = ops[last];
    if (typeof c === "string") {
      if (typeof p === "string") {
        ops[last] = p + c;
        return;
      }
      if (p < 0) {
        // Inserts go before deletes within a stretch.
        if (last > 0 && typeof ops[last - 1] === "string") {
          ops[last - 1] += c;
          return;
        }
        ops[last] = c;
        ops.push(p);
        return;
      }
    } else if (typeof p === "number" && ((c > 0 && p > 0) || (c < 0 && p < 0))) {
      ops[last] = p + c;
      return;
    }
    ops.push(c);
  }
  /** Returns the canonical op built so far and resets the builder. */
  op() {
    const op = this.ops;
    if (op.length > 0 && typeof op[op.length - 1] === "number" && op[op.length - 1] > 0) op.pop();
    this.ops = [];
    return op;
  }
}

// Iter walks an op's components, letting the current one be consumed in
// parts. Past the end it yields n = 0: the implicit retain of the rest.
class Iter {
  constructor(op) {
    this.op = op;
    this.i = -1;
    this.s = "";
    this.n = 0; // retain > 0, delete < 0, insert: its code-point count
    this.next();
  }
  next() {
    this.i++;
    if (this.i < this.op.length) {
      const c = this.op[this.i];
      if (typeof c === "string") {
        this.s = c;
        this.n = codePointLength(c);
      } else {
        this.s = "";
        this.n = c;
      }
    } else {
      this.s = "";
      this.n = 0;
    }
  }
  // take consumes m code points of the current component (0 < m <= its
  // length) and returns the consumed part of an insert.
  take(m) {
    if (this.s !== "") {
      const cut = codePointToUtf16(this.s, m);
      const head = this.s.slice(0, cut);
      this.s = this.s.slice(cut);
      this.n -= m;
      if (this.n === 0) this.next();
      return head;
    }
    if (this.n > 0) this.n -= m;
    else this.n += m;
    if (this.n === 0) this.next();
    return "";
  }
}

/**
 * Returns op in canonical form. Throws OpError on a zero-length component,
 * a number that is not an integer, or anything but numbers and strings.
 */
export function normalize(op) {
  checkComponents(op);
  const b = new OpBuilder();
  for (const c of op) b._add(c);
  return b.op();
}

/** Reports whether op is canonical (see the protocol's canonical form). */
export function isCanonical(op) {
  try {
    checkComponents(op);
  } catch {
    return false;
  }
  for (let i = 1; i < op.length; i++) {
    const p = op[i - 1];
    const c = op[i];
    const ps = typeof p === "string";
    const cs = typeof c === "string";
    if (ps && cs) return false;
    if (!ps && !cs && (p > 0) === (c > 0)) return false;
    if (!ps && p < 0 && cs) return false;
  }
  const last = op[op.length - 1];
  return !(typeof last === "number" && last > 0);
}

/** Returns the number of code points op reaches: its retains and deletes. */
export function baseLength(op) {
  let n = 0;
  for (const c of op) if (typeof c === "number") n += Math.abs(c);
  return n;
}

/** Returns how much op changes a text's length in code points. */
export function delta(op) {
  let d = 0;
  for (const c of op) {
    if (typeof c === "string") d += codePointLength(c);
    else if (c < 0) d += c;
  }
  return d;
}

/** Reports whether op changes nothing. */
export function isNoop(op) {
  return op.every((c) => typeof c === "number" && c > 0);
}

/**
 * Returns the canonical op that, at code point pos, deletes del code points
 * and inserts ins (Go ot.Splice).
 */
export function splice(pos, del, ins) {
  if (del <= 0 && ins === "") return [];
  const op = [];
  if (pos > 0) op.push(pos);
  if (ins !== "") op.push(ins);
  if (del > 0) op.push(-del);
  return op;
}

/** Throws OpError unless op applies to a text of length code points. */
export function check(op, length) {
  checkComponents(op);
  const reach = baseLength(op);
  if (reach > length) throw new OpError(`op reaches ${reach} code points, text has ${length}`);
}

// applyOp returns the text op makes of s, with the UTF-16 splices that take
// s there one after the other (each index in the text the previous ones
// left). bmp says that s has no surrogates, so that code points are UTF-16
// units: no scan of s is needed (a document's texts are mostly so).
function applyWithSplices(s, op, wantSplices, bmp = false) {
  check(op, bmp ? s.length : codePointLength(s));
  const parts = [];
  const splices = wantSplices ? [] : null;
  let i = 0; // UTF-16 index in s
  let out16 = 0; // UTF-16 length of the result so far
  for (const c of op) {
    if (typeof c === "string") {
      parts.push(c);
      if (splices) splices.push({ index: out16, deleteCount: 0, text: c });
      out16 += c.length;
    } else if (c > 0) {
      const j = bmp ? i + c : i + codePointToUtf16(s.slice(i), c);
      parts.push(s.slice(i, j));
      out16 += j - i;
      i = j;
    } else {
      const j = bmp ? i - c : i + codePointToUtf16(s.slice(i), -c);
      if (splices) {
        const last = splices[splices.length - 1];
        if (last && last.deleteCount === 0 && last.index + last.text.length === out16) last.deleteCount = j - i;
        else splices.push({ index: out16, deleteCount: j - i, text: "" });
      }
      i = j;
    }
  }
  parts.push(s.slice(i));
  return { text: parts.join(""), splices };
}

/** Returns the result of applying op to s. Throws OpError if op does not fit. */
export function apply(s, op) {
  return applyWithSplices(s, op, false).text;
}

/**
 * Takes two ops made concurrently on one text and returns [a2, b2] with
 * apply(apply(s, a), b2) === apply(apply(s, b), a2). Where both insert at one
 * position a's insert stands first: the server calls transform(history,
 * incoming), a client transform(incoming, pending). Identical to Go's
 * ot.Transform.
 */
export function transform(a, b) {
  checkComponents(a, "a");
  checkComponents(b, "b");
  const ab = new OpBuilder();
  const bb = new OpBuilder();
  const ia = new Iter(a);
  const ib = new Iter(b);
  for (;;) {
    if (ia.s !== "") {
      ab._add(ia.s);
      bb.retain(ia.n);
      ia.next();
    } else if (ib.s !== "") {
      ab.retain(ib.n);
      bb._add(ib.s);
      ib.next();
    } else if (ia.n === 0 && ib.n === 0) {
      return [ab.op(), bb.op()];
    } else if (ia.n === 0) {
      if (ib.n > 0) {
        ab.retain(ib.n);
        bb.retain(ib.n);
      } else bb.delete(-ib.n);
      ib.next();
    } else if (ib.n === 0) {
      if (ia.n > 0) {
        ab.retain(ia.n);
        bb.retain(ia.n);
      } else ab.delete(-ia.n);
      ia.next();
    } else {
      const m = Math.min(Math.abs(ia.n), Math.abs(ib.n));
      if (ia.n > 0 && ib.n > 0) {
        ab.retain(m);
        bb.retain(m);
      } else if (ia.n < 0 && ib.n < 0) {
        // Both delete the same text.
      } else if (ia.n < 0) ab.delete(m);
      else bb.delete(m);
      ia.take(m);
      ib.take(m);
    }
  }
}

/** Returns one op doing what a then b do (Go ot.Compose). */
export function compose(a, b) {
  checkComponents(a, "a");
  checkComponents(b, "b");
  const out = new OpBuilder();
  const ia = new Iter(a);
  const ib = new Iter(b);
  for (;;) {
    if (ia.s === "" && ia.n < 0) {
      out.delete(-ia.n);
      ia.next();
    } else if (ib.s !== "") {
      out._add(ib.s);
      ib.next();
    } else if (ia.n === 0 && ib.n === 0) {
      return out.op();
    } else if (ia.n === 0) {
      out._add(ib.n);
      ib.next();
    } else if (ib.n === 0) {
      out._add(ia.s !== "" ? ia.s : ia.n);
      ia.next();
    } else {
      const m = Math.min(ia.n, Math.abs(ib.n));
      if (ia.s !== "" && ib.n > 0) {
        out._add(ia.take(m));
        ib.take(m);
        continue;
      }
      if (ia.s !== "") {
        // Inserted, then deleted: nothing.
      } else if (ib.n > 0) out.retain(m);
      else out.delete(m);
      ia.take(m);
      ib.take(m);
    }
  }
}

/** Returns the op that undoes op, given the text base op applies to. */
export function invert(op, base) {
  return invertText(op, base, false);
}

// invertText is invert; bmp says base has no surrogates (see applyWithSplices).
function invertText(op, base, bmp) {
  check(op, bmp ? base.length : codePointLength(base));
  const b = new OpBuilder();
  let i = 0; // UTF-16 index in base
  for (const c of op) {
    if (typeof c === "string") b.delete(codePointLength(c));
    else if (c > 0) {
      b.retain(c);
      i += bmp ? c : codePointToUtf16(base.slice(i), c);
    } else {
      const j = bmp ? i - c : i + codePointToUtf16(base.slice(i), -c);
      b.insert(base.slice(i, j));
      i = j;
    }
  }
  return b.op();
}

/**
 * Moves a position through op (Go ot.TransformIndex). Text inserted exactly
 * at the position pushes it along only when own is true (the op is the
 * position owner's own edit).
 */
export function transformIndex(op, index, own) {
  let out = index;
  let pos = 0;
  for (const c of op) {
    if (typeof c === "string") {
      if (pos < index || (pos === index && own)) out += codePointLength(c);
    } else if (c > 0) pos += c;
    else {
      if (pos < index) out -= Math.min(-c, index - pos);
      pos -= c;
    }
    if (pos > index) break;
  }
  return out;
}

/**
 * Moves a comment-like range {from, to} through op (Go ot.TransformRange):
 * text inserted at either end stays outside; a deleted range collapses to a
 * point and is kept.
 */
export function transformRange(op, r) {
  if (r.from === r.to) {
    const p = transformIndex(op, r.from, false);
    return { from: p, to: p };
  }
  const from = transformIndex(op, r.from, true);
  let to = transformIndex(op, r.to, false);
  if (to < from) to = from;
  return { from, to };
}

/** Moves a selection {anchor, head} through op (Go ot.TransformSelection). */
export function transformSelection(op, s, own) {
  return { anchor: transformIndex(op, s.anchor, own), head: transformIndex(op, s.head, own) };
}

// unmapIndex maps a position in the text op produced back to the text op
// was applied to. A position in text op inserted goes to where the insert
// was; a position next to deleted text goes in front of it.
function unmapIndex(op, index) {
  let inPos = 0;
  let outPos = 0;
  for (const c of op) {
    if (typeof c === "string") {
      const n = codePointLength(c);
      if (index <= outPos + n) return inPos;
      outPos += n;
    } else if (c > 0) {
      if (index <= outPos + c) return inPos + (index - outPos);
      inPos += c;
      outPos += c;
    } else inPos -= c;
  }
  return inPos + (index - outPos);
}

// minimalOp returns an op taking text a to text b: keep the common prefix
// and suffix, replace the middle. Used when a reset replaces the text.
function minimalOp(a, b) {
  let p = 0;
  const max = Math.min(a.length, b.length);
  while (p < max && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  if (p > 0 && isHigh(a.charCodeAt(p - 1))) p--; // do not split a pair
  let s = 0;
  while (s < max - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++;
  if (s > 0 && isLow(a.charCodeAt(a.length - s))) s--;
  const ins = b.slice(p, b.length - s);
  return splice(codePointLength(a.slice(0, p)), codePointLength(a.slice(p, a.length - s)), ins);
}

// ---------------------------------------------------------------------------
// 3. Sizes on the wire: splitting a large edit into ops the server accepts

/** The limits assumed when the server's connected frame names none. */
export const DEFAULT_LIMITS = Object.freeze({ maxFrameBytes: 65536, maxOpBytes: 65536, maxDocLen: null });

// jsonCharBytes returns how many UTF-8 bytes JSON.stringify writes for the
// UTF-16 unit c (a surrogate pair's two halves together count 4): quote,
// backslash and \b \f \n \r \t take two, the other control characters six
// (\u00XX), and the rest their UTF-8 length. Lone surrogates never occur
// here: inserts are wellFormed.
function jsonCharBytes(c) {
  if (c < 0x20) return c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6;
  if (c === 0x22 || c === 0x5c) return 2;
  if (c < 0x80) return 1;
  if (c < 0x800) return 2;
  if (c >= 0xd800 && c <= 0xdfff) return 2; // half of a 4-byte pair
  return 3;
}

/** Returns how many bytes s takes in UTF-8 (a lone surrogate as U+FFFD). */
export function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (isHigh(c) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Returns how many bytes op takes as JSON.stringify writes it, in UTF-8:
 * what it adds to a frame.
 */
export function opJSONLength(op) {
  let n = 2 + Math.max(op.length - 1, 0);
  for (const c of op) {
    if (typeof c === "number") n += String(c).length;
    else {
      n += 2;
      for (let i = 0; i < c.length; i++) n += jsonCharBytes(c.charCodeAt(i));
    }
  }
  return n;
}

/**
 * Cuts op in two: a head that inserts at most maxInsertBytes of UTF-8 and
 * takes at most maxJSONBytes as JSON, and the rest (null when op fits),
 * such that applying the head and then the rest does what op does. The
 * head always inserts or deletes something, whatever the limits, so that
 * repeated cuts progress. A code point is never cut; op is canonical.
 */
export function splitHead(op, { maxInsertBytes, maxJSONBytes }) {
  const b = new OpBuilder();
  let json = 2; // brackets
  let ins = 0;
  let pos = 0; // the head's end, in the text the head produces
  let taken = 0; // components in the head, for the commas
  let changed = false; // the head inserts or deletes: it has made progress
  for (let i = 0; i < op.length; i++) {
    const c = op[i];
    if (typeof c === "number") {
      const cost = String(c).length + (taken > 0 ? 1 : 0);
      if (changed && json + cost > maxJSONBytes) return cut(b, pos, op, i, null);
      json += cost;
      taken++;
      if (c > 0) {
        b.retain(c);
        pos += c;
      } else {
        b.delete(-c);
        changed = true;
      }
      continue;
    }
    // An insert: take as much as both budgets allow.
    let cost = 2 + (taken > 0 ? 1 : 0);
    let j = 0;
    let cps = 0;
    while (j < c.length) {
      const u = c.charCodeAt(j);
      const pair = isHigh(u) && j + 1 < c.length && isLow(c.charCodeAt(j + 1));
      const w = pair ? 2 : 1;
      const bytes = pair ? 4 : u < 0x80 ? 1 : u < 0x800 ? 2 : 3;
      const jc = pair ? 4 : jsonCharBytes(u);
      if ((changed || j > 0) && (json + cost + jc > maxJSONBytes || ins + bytes > maxInsertBytes)) break;
      cost += jc;
      ins += bytes;
      j += w;
      cps++;
    }
    if (j > 0) {
      b.insert(c.slice(0, j));
      json += cost;
      taken++;
      pos += cps;
      changed = true;
    }
    if (j < c.length) return cut(b, pos, op, i, c.slice(j));
  }
  return [b.op(), null];
}

// cut finishes splitHead: the head built so far, and the rest of op from
// component i on (its first part replaced by remainder when given), behind
// a retain of the head's end.
function cut(b, pos, op, i, remainder) {
  const head = b.op();
  const r = new OpBuilder().retain(pos);
  if (remainder !== null) {
    r.insert(remainder);
    i++;
  }
  for (; i < op.length; i++) r._add(op[i]);
  return [head, r.op()];
}

/**
 * Cuts op into ops that each fit the limits of splitHead, to be applied
 * one after the other.
 */
export function splitOp(op, limits) {
  const out = [];
  let rest = op;
  while (rest !== null && !isNoop(rest)) {
    const [head, next] = splitHead(rest, limits);
    out.push(head);
    rest = next;
  }
  return out;
}

/** The OT engine as one namespace, for those who prefer `ot.transform`. */
export const ot = Object.freeze({
  OpBuilder,
  OpError,
  normalize,
  isCanonical,
  baseLength,
  delta,
  isNoop,
  splice,
  check,
  apply,
  transform,
  compose,
  invert,
  transformIndex,
  transformRange,
  transformSelection,
});

// ---------------------------------------------------------------------------
// 4. Events

/** Emitter is the small event emitter every Tandem object is. */
class Emitter {
  constructor() {
    this._handlers = new Map();
  }
  /** Calls fn on every `event`; returns a function that stops it. */
  on(event, fn) {
    let set = this._handlers.get(event);
    if (!set) this._handlers.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }
  /** Calls fn on the next `event` only; returns a function that cancels it. */
  once(event, fn) {
    const off = this.on(event, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }
  /** Stops calling fn on `event`. */
  off(event, fn) {
    this._handlers.get(event)?.delete(fn);
  }
  _emit(event, ...args) {
    const set = this._handlers.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        // A failing handler must not break the client's state machine;
        // rethrow where the host reports uncaught errors.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}


// memberOf turns a member as the protocol has it into the client's shape:
// clientId, with client_id kept as a deprecated alias for one release.
function memberOf(m) {
  const out = { clientId: m.client_id, user: m.user, client_id: m.client_id };
  if (m.state !== undefined) out.state = m.state;
  return out;
}

function errorOf(frame) {
  return new TandemError(frame.code, frame.message, frame);
}

const DISCONNECTED = { type: "error", code: "disconnected", message: "the connection closed before the reply" };

function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // rejections are reported through events too
  return { promise, resolve, reject };
}

function randomId(n) {
  const bytes = new Uint8Array(n);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < n; i++) bytes[i] = Math.floor(Math.random() * 256);
  let s = "";
  for (const b of bytes) s += (b % 36).toString(36);
  return s;
}

// jwtExpiry returns a JWT's exp in milliseconds, or 0 when it has none.
function jwtExpiry(token) {
  try {
    const part = token.split(".")[1];
    if (!part) return 0;
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4);
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims.exp === "number" ? claims.exp * 1000 : 0;
  } catch {
    return 0;
  }
}

// A connection must last this long (ms) for the reconnect backoff to start
// again from its minimum.
const STABLE_AFTER = 10000;

// limitsOf reads the limits object of a connected frame; what it lacks
// keeps its default.
function limitsOf(l) {
  const pos = (v, d) => (Number.isInteger(v) && v > 0 ? v : d);
  return {
    maxFrameBytes: pos(l?.max_frame_bytes, DEFAULT_LIMITS.maxFrameBytes),
    maxOpBytes: pos(l?.max_op_bytes, DEFAULT_LIMITS.maxOpBytes),
    maxDocLen: pos(l?.max_doc_len, DEFAULT_LIMITS.maxDocLen),
  };
}

function wsURL(url) {
  const u = new URL(url, globalThis.location?.href);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.pathname === "" || u.pathname === "/") u.pathname = "/ws";
  return u.toString();
}

function defaultStorage() {
  try {
    const s = globalThis.localStorage;
    if (s && typeof s.getItem === "function") return s;
  } catch {
    // Access denied (sandboxed frame, privacy mode).
  }
  return null;
}

// ---------------------------------------------------------------------------
// 5. Client

/**
 * Connects to a Tandem server and returns the client at once; it keeps
 * (re)connecting until close(). See Client for the options.
 */
export function connect(options) {
  return new Client(options);
}

/**
 * Client is one connection to a Tandem server, reconnecting with
 * exponential backoff and jitter until close(). Status events:
 * "connecting" (the first attempt), "connected", "reconnecting" (after a
 * drop, while waiting and retrying) and "disconnected" (closed for good).
 */
export class Client extends Emitter {
  constructor(options = {}) {
    super();
    if (!options.url) throw new TandemError("invalid_options", "connect: url is required");
    this.url = wsURL(options.url);
    this._token = options.token ?? "";
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== "function") {
      throw new TandemError("invalid_options", "connect: no WebSocket class: pass options.WebSocket (in Node 20 run with --experimental-websocket)");
    }
    this._guest = { user: options.user, name: options.name };
    const b = options.backoff ?? {};
    this._backoff = { min: b.min ?? 500, max: b.max ?? 30000, factor: b.factor ?? 2 };
    this._connectTimeout = options.connectTimeout ?? 10000;
    this.storage = options.storage === undefined ? defaultStorage() : options.storage;
    this.storagePrefix = options.storagePrefix ?? `tandem:${this.url}:`;
    /** "connecting", "connected", "reconnecting" or "disconnected". */
    this.status = "connecting";
    /** This connection's id, from the server's connected frame. */
    this.clientId = null;
    /** Who the server says we are: {id, name, color}. */
    this.user = null;
    /**
     * What the application's connect hook attached to the connected frame
     * (docs/hooks.md), or null.
     */
    this.data = null;
    /**
     * The server's size limits from its connected frame (the defaults
     * until then, and when it names none): {maxFrameBytes, maxOpBytes,
     * maxDocLen}. Local edits are sent as ops that fit them.
     */
    this.limits = { ...DEFAULT_LIMITS };
    this._ws = null;
    this._live = false; // connected frame received on _ws
    this._closed = false;
    this._attempt = 0;
    this._nextId = 1;
    this._reqs = new Map(); // id → callback(frame)
    this._subs = new Map(); // channel → Subscription
    this._docs = new Map(); // doc id → Doc
    this._waiters = []; // resolvers of whenConnected
    this._timers = new Set();
    this._lastFrame = 0;
    this._uidPrefix = randomId(10);
    this._uidN = 0;
    this._currentToken = "";
    this._pingEvery = 25000;
    this._heartbeat = null;
    this._refreshTimer = null;
    this._retryTimer = null;
    this._stableTimer = null;
    this._refused = null; // the error answering a refused connect
    this._ackTimeout = options.ackTimeout ?? 5000;
    this._ackTimer = null;
    this._suspended = false; // the page is hidden in the back/forward cache
    // In a browser, coming back online is worth a retry at once, and going
    // offline is a dead connection now: a socket notices it only when a
    // write times out, tens of seconds later.
    this._onOnline = () => {
      if (this.status === "reconnecting" || this.status === "connecting") this.reconnect();
    };
    this._onOffline = () => {
      if (this._ws) this._drop(this._ws, { code: 4000, reason: "the browser is offline" });
    };
    // A page left for another keeps running in the back/forward cache:
    // its socket would keep it a member of everything it had open (a ghost
    // on the others' screens). It closes on pagehide and reconnects when the
    // page is shown again. Coalesced storage writes are made first.
    this._onPageHide = () => {
      for (const doc of this._docs.values()) doc._flushStorage();
      if (this._closed) return;
      this._suspended = true;
      this._clearTimer(this._retryTimer);
      this._retryTimer = null;
      if (this._ws) this._drop(this._ws, { code: 1001, reason: "page hidden" });
    };
    this._onPageShow = () => {
      if (!this._suspended || this._closed) return;
      this._suspended = false;
      this.reconnect();
    };
    for (const [ev, fn] of [["online", this._onOnline], ["offline", this._onOffline], ["pagehide", this._onPageHide], ["pageshow", this._onPageShow]]) {
      globalThis.addEventListener?.(ev, fn);
    }
    this._open();
  }

  // ----- connection lifecycle

  _setStatus(status, detail = {}) {
    this.status = status;
    this._emit("status", status, detail);
    if (status === "connected") {
      const ws = this._waiters;
      this._waiters = [];
      for (const w of ws) w.resolve();
    }
  }

  async _getToken() {
    const t = this._token;
    return typeof t === "function" ? String((await t()) ?? "") : String(t ?? "");
  }

  async _open() {
    this._retryTimer = null;
    if (this._closed) return;
    let token;
    try {
      token = await this._getToken();
    } catch (err) {
      this._emit("error", new TandemError("unauthorized", `token callback failed: ${err?.message ?? err}`));
      this._scheduleReconnect();
      return;
    }
    if (this._closed) return;
    this._currentToken = token;
    let ws;
    try {
      ws = new this._WebSocket(this.url);
    } catch (err) {
      this._emit("error", new TandemError("disconnected", `cannot open ${this.url}: ${err?.message ?? err}`));
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    this._live = false;
    const deadline = this._setTimer(() => {
      if (this._ws === ws && !this._live) this._drop(ws, { code: 4000, reason: "connect timeout" });
    }, this._connectTimeout);
    ws.onopen = () => {
      if (this._ws !== ws) return;
      const frame = { type: "connect", token, client: CLIENT_NAME };
      if (this._guest.user) frame.user = this._guest.user;
      if (this._guest.name) frame.name = this._guest.name;
      this._request(frame, (reply) => {
        this._clearTimer(deadline);
        if (reply.type === "connected") this._onConnected(ws, reply);
        else if (reply.type === "error" && reply.code !== "unavailable" && reply.code !== "disconnected") {
          // A refused token, or the application's connect hook said no
          // (with its own code, perhaps): the server closes with 4001
          // next, and _drop reports it, once.
          this._refused = errorOf(reply);
        } else if (reply.type === "error" && reply.code !== "disconnected") this._emit("error", errorOf(reply));
      }, true);
    };
    ws.onmessage = (e) => {
      if (this._ws !== ws) return;
      this._lastFrame = Date.now();
      const data = typeof e.data === "string" ? e.data : "";
      for (const line of data.split("\n")) {
        if (line === "") continue;
        let frame;
        try {
          frame = JSON.parse(line);
        } catch {
          continue;
        }
        this._onFrame(frame);
      }
    };
    ws.onerror = () => {
      // Browsers follow an error with a close event; Node 20's WebSocket,
      // when the connection is refused, does not (it stays CONNECTING).
      this._clearTimer(deadline);
      if (this._ws === ws) this._drop(ws, { code: 1006, reason: "network error" });
    };
    ws.onclose = (e) => {
      this._clearTimer(deadline);
      if (this._ws === ws) this._drop(ws, { code: e.code, reason: e.reason });
    };
  }

  _onConnected(ws, reply) {
    this._live = true;
    this.clientId = reply.client_id;
    this.user = reply.user;
    this.data = reply.data ?? null;
    this.limits = limitsOf(reply.limits);
    // The backoff starts again from its minimum only once the connection
    // has lasted: a server that accepts and then closes (a connection cap,
    // a close code this client does not know) is retried ever more slowly.
    this._clearTimer(this._stableTimer);
    this._stableTimer = this._setTimer(() => {
      if (this._ws === ws && this._live) this._attempt = 0;
    }, STABLE_AFTER);
    this._lastFrame = Date.now();
    this._pingEvery = Math.max(1, reply.ping_interval || 25) * 1000;
    this._startHeartbeat(ws);
    this._scheduleRefresh();
    this._setStatus("connected", { clientId: this.clientId, user: this.user, server: reply.server });
    const info = { clientId: this.clientId, user: this.user, server: reply.server };
    if (this.data != null) info.data = this.data; // only when the application attached some
    this._emit("connected", info);
    for (const sub of this._subs.values()) sub._resubscribe();
    for (const doc of this._docs.values()) doc._reopen();
  }

  // _drop forgets a socket that closed or that we give up on, and decides
  // whether to reconnect.
  _drop(ws, { code, reason }) {
    if (this._ws !== ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(1000, "client closing");
    } catch {
      // Already closing.
    }
    this._ws = null;
    const wasLive = this._live;
    this._live = false;
    clearInterval(this._heartbeat);
    this._heartbeat = null;
    this._clearTimer(this._refreshTimer);
    this._refreshTimer = null;
    this._clearTimer(this._ackTimer);
    this._ackTimer = null;
    const reqs = this._reqs;
    this._reqs = new Map();
    for (const cb of reqs.values()) cb(DISCONNECTED);
    for (const sub of this._subs.values()) sub._onDisconnect();
    for (const doc of this._docs.values()) doc._onDisconnect();
    if (this._closed) return;
    if (wasLive) this._emit("disconnect", { code, reason });
    const refused = this._refused;
    this._refused = null;
    if (code === 4001 || refused) {
      // The token was refused (at connect, or when it expired): one error
      // with the server's reason and the close code.
      const err = new TandemError("unauthorized", refused?.message || reason || "unauthorized", refused?.frame);
      err.closeCode = code;
      this._emit("error", err);
      if (typeof this._token !== "function") {
        // No way to get another token: give up.
        this._shutdown(err);
        return;
      }
    }
    if (this._suspended) {
      this._setStatus("reconnecting", { code, reason }); // at pageshow
      return;
    }
    this._scheduleReconnect({ code, reason });
  }

  _scheduleReconnect(cause = {}) {
    if (this._closed) return;
    const { min, max, factor } = this._backoff;
    const ceiling = Math.min(max, min * Math.pow(factor, this._attempt));
    // "Equal jitter": half fixed, half random, so that delays still grow
    // but clients dropped together do not come back together.
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this._attempt++;
    this._setStatus(this.status === "connecting" && !this.clientId ? "connecting" : "reconnecting", {
      attempt: this._attempt,
      delay,
      code: cause.code,
      reason: cause.reason,
    });
    this._retryTimer = this._setTimer(() => this._open(), delay);
  }

  _startHeartbeat(ws) {
    clearInterval(this._heartbeat);
    this._heartbeat = setInterval(() => {
      if (this._ws !== ws) return;
      if (Date.now() - this._lastFrame > 2 * this._pingEvery) {
        this._drop(ws, { code: 4000, reason: "heartbeat timeout" });
        return;
      }
      this._send({ type: "ping" });
    }, this._pingEvery);
    this._heartbeat.unref?.();
  }

  // _scheduleRefresh asks the token callback for a new token before the
  // current one expires, and sends it.
  _scheduleRefresh() {
    this._clearTimer(this._refreshTimer);
    this._refreshTimer = null;
    if (typeof this._token !== "function") return;
    const exp = jwtExpiry(this._currentToken);
    if (!exp) return;
    const left = exp - Date.now();
    // A minute early, or half the time left for short-lived tokens.
    const margin = Math.min(60000, Math.max(1000, left / 2));
    this._refreshTimer = this._setTimer(() => this.refreshToken().catch(() => {}), Math.max(0, left - margin));
  }

  /**
   * Fetches a new token from the token callback and sends it to the server
   * now. Called on its own before the current token expires.
   */
  async refreshToken() {
    const token = await this._getToken();
    this._currentToken = token;
    if (!this._live) return;
    const reply = await this._requestP({ type: "refresh", token });
    this._scheduleRefresh();
    this._emit("refreshed", {});
    return reply;
  }

  // _watchAcks makes sure a dead connection is noticed soon while an op
  // waits for its ack: every ackTimeout/2 it pings, and it drops the
  // connection when nothing at all has come for ackTimeout.
  _watchAcks() {
    if (this._ackTimer != null || !this._live || !(this._ackTimeout > 0)) return;
    const ws = this._ws;
    const period = this._ackTimeout / 2;
    const due = Date.now() + period;
    this._ackTimer = this._setTimer(() => {
      this._ackTimer = null;
      if (this._ws !== ws || !this._live) return;
      if (![...this._docs.values()].some((d) => d._inflight && d._open)) return;
      // A timer that fires late means the page was busy (a long task):
      // frames that came meanwhile may still wait behind it. Not a dead
      // connection: look again a period later.
      const late = Date.now() - due > Math.min(1000, period);
      if (!late && Date.now() - this._lastFrame > this._ackTimeout) {
        this._drop(ws, { code: 4000, reason: "the server stopped answering" });
        return;
      }
      this._send({ type: "ping" });
      this._watchAcks();
    }, this._ackTimeout / 2);
  }

  /** Closes the current connection and reconnects at once. */
  reconnect() {
    if (this._closed) return;
    this._suspended = false;
    this._attempt = 0;
    if (this._retryTimer) {
      this._clearTimer(this._retryTimer);
      this._open();
      return;
    }
    if (this._ws) {
      const ws = this._ws;
      this._drop(ws, { code: 4000, reason: "reconnect requested" });
      this._clearTimer(this._retryTimer);
      this._retryTimer = null;
    }
    this._open();
  }

  /**
   * Closes the connection for good. Unacknowledged document edits stay in
   * storage (when there is one) and are sent by the next client that opens
   * the document with it.
   */
  close() {
    if (this._closed) return;
    const ws = this._ws;
    this._closed = true;
    if (ws) this._drop(ws, { code: 1000, reason: "closed" });
    this._shutdown();
  }

  // _shutdown stops for good; why (a TandemError) is what waiters get,
  // by default "closed".
  _shutdown(why = null) {
    this._closed = true;
    this._why = why ?? new TandemError("closed", "client closed");
    for (const [ev, fn] of [["online", this._onOnline], ["offline", this._onOffline], ["pagehide", this._onPageHide], ["pageshow", this._onPageShow]]) {
      globalThis.removeEventListener?.(ev, fn);
    }
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    clearInterval(this._heartbeat);
    for (const doc of this._docs.values()) doc._onClientClosed(this._why);
    for (const sub of this._subs.values()) sub._onClientClosed(this._why);
    const ws = this._waiters;
    this._waiters = [];
    for (const w of ws) w.reject(this._why);
    this._setStatus("disconnected", {});
  }

  /**
   * Resolves when the client is connected (at once if it is). Rejects when
   * the client stops for good: with code unauthorized (and closeCode 4001)
   * when the server refused the token, closed after close().
   */
  whenConnected() {
    if (this.status === "connected") return Promise.resolve();
    if (this._closed) return Promise.reject(this._why ?? new TandemError("closed", "client closed"));
    const d = deferred();
    this._waiters.push(d);
    return d.promise;
  }

  /** Sends a ping and resolves with the round-trip time in milliseconds. */
  async ping() {
    await this.whenConnected();
    const t = Date.now();
    await this._requestP({ type: "ping" });
    return Date.now() - t;
  }

  /**
   * Calls method of the application's backend (the server's rpc hook,
   * docs/hooks.md) with data and resolves with its answer (null when it
   * gave none). Rejects with a TandemError: the application's code and
   * message when it refused, unavailable when it failed, not_found when
   * no hook takes the method, disconnected when the connection dropped
   * before the answer (the method may or may not have run).
   */
  async rpc(method, data) {
    await this.whenConnected();
    const frame = { type: "rpc", method };
    if (data !== undefined) frame.data = data;
    const reply = await this._requestP(frame);
    return reply.data ?? null;
  }

  // ----- frames

  _setTimer(fn, ms) {
    const t = setTimeout(() => {
      this._timers.delete(t);
      fn();
    }, ms);
    this._timers.add(t);
    return t;
  }

  _clearTimer(t) {
    if (t == null) return;
    clearTimeout(t);
    this._timers.delete(t);
  }

  // _send writes a frame on the live connection; false when there is none.
  _send(frame, beforeConnected = false) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1 || (!this._live && !beforeConnected)) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  // _request sends a frame with a fresh id; cb gets the reply, an error
  // frame, or DISCONNECTED.
  _request(frame, cb, beforeConnected = false) {
    const id = this._nextId++;
    frame = { id, ...frame };
    this._reqs.set(id, cb);
    if (!this._send(frame, beforeConnected)) {
      this._reqs.delete(id);
      cb(DISCONNECTED);
    }
    return id;
  }

  // _confirm sends a frame the server answers only when it refuses it
  // (presence, read), followed by a ping: the server handles a
  // connection's frames in order, so the pong means the frame was taken,
  // and an error before it that it was not. Resolves or rejects with a
  // TandemError (disconnected when the connection dropped meanwhile).
  _confirm(frame) {
    return new Promise((resolve, reject) => {
      let refused = null;
      const id = this._request(frame, (reply) => {
        if (reply.type === "error") refused = reply;
      });
      this._request({ type: "ping" }, (reply) => {
        this._reqs.delete(id); // answered only on failure
        if (refused) reject(errorOf(refused));
        else if (reply.type === "error") reject(errorOf(reply));
        else resolve();
      });
    });
  }

  _requestP(frame) {
    return new Promise((resolve, reject) => {
      this._request(frame, (reply) => (reply.type === "error" ? reject(errorOf(reply)) : resolve(reply)));
    });
  }

  _onFrame(f) {
    if (f.id != null) {
      const cb = this._reqs.get(f.id);
      if (cb) {
        this._reqs.delete(f.id);
        cb(f);
        return;
      }
    }
    switch (f.type) {
      case "op":
      case "ack":
      case "cursor":
      case "comment":
      case "snapshot":
      case "opened":
      case "closed":
        this._docs.get(f.doc)?._onFrame(f);
        return;
      case "presence":
        if (f.doc != null || (f.channel ?? "").startsWith("doc:")) {
          this._docs.get(f.doc ?? f.channel.slice(4))?._onFrame(f);
        } else this._subs.get(f.channel)?._onFrame(f);
        return;
      case "unsubscribed":
        if ((f.channel ?? "").startsWith("doc:")) this._docs.get(f.channel.slice(4))?._onFrame(f);
        else this._subs.get(f.channel)?._onFrame(f);
        return;
      case "message":
      case "retracted":
      case "receipt":
      case "subscribed":
        this._subs.get(f.channel)?._onFrame(f);
        return;
      case "error": {
        const err = errorOf(f);
        if (f.doc && this._docs.has(f.doc)) this._docs.get(f.doc)._emit("error", err);
        else if (f.channel && this._subs.has(f.channel)) this._subs.get(f.channel)._emit("error", err);
        else this._emit("error", err);
        return;
      }
      default:
        return; // pong, refreshed, and anything newer than this client
    }
  }

  _newUid() {
    return `${this._uidPrefix}-${++this._uidN}`;
  }

  // ----- channels and documents

  /**
   * Subscribes to a channel; onMessage gets every message in offset order,
   * once, including those recovered after a reconnect. options.since
   * ({offset, epoch}) recovers from a position saved earlier.
   */
  subscribe(channel, onMessage, options = {}) {
    if (this._closed) throw new TandemError("closed", "client closed");
    if (this._subs.has(channel)) throw new TandemError("already_subscribed", `already subscribed to ${channel}; use getSubscription`);
    const sub = new Subscription(this, channel, onMessage, options);
    this._subs.set(channel, sub);
    if (this._live) sub._resubscribe();
    return sub;
  }

  /** Returns the subscription to channel, if any. */
  getSubscription(channel) {
    return this._subs.get(channel);
  }

  /**
   * Opens a document. Its text is there once doc.ready resolves, or at once
   * when storage holds unsent edits of it from an earlier session.
   */
  openDoc(id, options = {}) {
    if (this._closed) throw new TandemError("closed", "client closed");
    if (this._docs.has(id)) throw new TandemError("already_open", `document ${id} is already open; use getDoc`);
    const doc = new Doc(this, id, options);
    this._docs.set(id, doc);
    if (this._live) doc._reopen();
    return doc;
  }

  /** Returns the open document with that id, if any. */
  getDoc(id) {
    return this._docs.get(id);
  }
}

// ---------------------------------------------------------------------------
// 6. Channels

/**
 * Subscription is one channel subscription. Events: "message" (also passed
 * to the subscribe callback), "retracted" ({offset, by}), "receipt"
 * ({user, offset, ts}), "subscribed" ({offset, epoch, recovered, resumed}),
 * "gap" (a resubscription could not recover every missed message: reload
 * what you need), "unsubscribed" ({reason}), "error".
 */
class Subscription extends Emitter {
  constructor(client, channel, onMessage, options) {
    super();
    this.client = client;
    this.channel = channel;
    /** The last offset seen, or null before the first subscribed. */
    this.offset = options.since?.offset ?? null;
    /** The channel's epoch as last seen. */
    this.epoch = options.since?.epoch ?? null;
    /** Read receipts: user id → highest offset read. */
    this.receipts = {};
    /**
     * What the application's subscribe hook attached to the latest
     * subscribed frame (docs/hooks.md), or null.
     */
    this.data = null;
    this.active = true;
    this._members = new Map();
    this._memberCount = null;
    this._presenceState = null;
    this._unread = null;
    this._skip = new Set(); // offsets of our own echo-less messages
    this._subscribed = false;
    this._subWaiters = []; // see _whenSubscribed
    this._ready = deferred();
    /** Resolves at the first subscribed, rejects if the subscribe fails. */
    this.ready = this._ready.promise;
    this.presence = new Presence(this);
    if (onMessage) this.on("message", onMessage);
  }

  _resubscribe() {
    if (!this.active) return;
    const frame = { type: "subscribe", channel: this.channel, presence_batch: true };
    if (this.offset != null) frame.since = { offset: this.offset, epoch: this.epoch ?? "" };
    const resumed = this.offset != null;
    this.client._request(frame, (reply) => {
      if (reply.type === "subscribed") this._onSubscribed(reply, resumed);
      else if (reply.type === "error" && reply.code !== "disconnected") {
        const err = errorOf(reply);
        this._emit("error", err);
        if (!this._subscribed) this._ready.reject(err);
        if (reply.code === "forbidden" || reply.code === "bad_request") this._deactivate();
      }
    });
  }

  _onSubscribed(f, resumed) {
    if (!this.active) return;
    this._subscribed = true;
    if (resumed && !f.recovered) this._emit("gap", { offset: f.offset, epoch: f.epoch, since: this.offset });
    const epochChanged = this.epoch != null && this.epoch !== f.epoch;
    for (const m of f.messages ?? []) this._deliver(m, epochChanged);
    this.offset = f.offset;
    this.epoch = f.epoch;
    this.receipts = { ...(f.receipts ?? {}) };
    this.data = f.data ?? null;
    this._members = new Map((f.members ?? []).map((m) => [m.client_id, memberOf(m)]));
    this._memberCount = f.member_count ?? null;
    if (f.members_next) this._fetchMembers(); // a large room: read the rest
    if (this._presenceState != null) {
      this.client._send({ type: "presence", channel: this.channel, state: this._presenceState });
    }
    if (this._unread != null) {
      // A receipt not taken before the drop (markRead's promise, if any,
      // sends it again and learns the answer).
      this.client._send({ type: "read", channel: this.channel, offset: this._unread });
      this._unread = null;
    }
    const waiters = this._subWaiters;
    this._subWaiters = [];
    for (const w of waiters) w.resolve();
    const e = { offset: f.offset, epoch: f.epoch, recovered: !!f.recovered, resumed };
    if (this.data != null) e.data = this.data; // only when the application attached some
    this._emit("subscribed", e);
    this.presence._emit("sync", this.presence.members);
    this.presence._emit("change", this.presence.members);
    this._ready.resolve(this);
  }

  // _fetchMembers reads the member list a page at a time; each page
  // replaces what we know of its range of client ids (pages come in order
  // with the presence events, so the list ends exact).
  _fetchMembers(after = "") {
    this.client._request({ type: "members", channel: this.channel, after }, (f) => {
      if (!this.active || f.type !== "members") return;
      this._memberCount = f.count;
      if (f.mode === "count") return;
      for (const id of [...this._members.keys()]) {
        if (id > (f.after ?? "") && (!f.next || id <= f.next)) this._members.delete(id);
      }
      for (const m of f.members) this._members.set(m.client_id, memberOf(m));
      this.presence._emit("change", this.presence.members);
      if (f.next) this._fetchMembers(f.next);
    });
  }

  _deliver(m, force = false) {
    const msg = {
      channel: this.channel,
      offset: m.offset ?? null,
      event: m.event,
      data: m.data,
      from: m.from ? { user: m.from.user, clientId: m.from.client_id, client_id: m.from.client_id } : null,
      ts: m.ts,
    };
    if (m.retracted) msg.retracted = true;
    if (m.offset) {
      if (!force && this.offset != null && m.offset <= this.offset) return; // seen
      this.offset = m.offset;
      if (this._skip.delete(m.offset)) return; // our own, published with echo false
      this._advance();
    }
    this._emit("message", msg);
  }

  // _advance moves offset past our own echo-less messages that follow it.
  _advance() {
    while (this.offset != null && this._skip.delete(this.offset + 1)) this.offset++;
  }

  _onFrame(f) {
    if (!this.active) return;
    switch (f.type) {
      case "message":
        if (f.offset && this.offset != null && f.offset > this.offset + 1) {
          // Missed something: ask again from where we are.
          this._resubscribe();
          return;
        }
        this._deliver(f);
        return;
      case "retracted":
        this._emit("retracted", { offset: f.offset, by: f.by });
        return;
      case "receipt":
        if ((this.receipts[f.user] ?? 0) < f.offset) this.receipts[f.user] = f.offset;
        this._emit("receipt", { user: f.user, offset: f.offset, ts: f.ts });
        return;
      case "presence":
        this.presence._onFrame(f);
        return;
      case "unsubscribed":
        this._deactivate();
        this._emit("unsubscribed", { reason: f.reason ?? "" });
        return;
    }
  }

  _onDisconnect() {
    this._subscribed = false;
  }

  _onClientClosed(why) {
    this._ready.reject(why);
    this._failWaiters(why);
  }

  _failWaiters(err) {
    const waiters = this._subWaiters;
    this._subWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  // _whenSubscribed resolves at the next subscribed, and rejects when the
  // subscription or the client ends.
  _whenSubscribed() {
    if (!this.active) return Promise.reject(new TandemError("closed", `not subscribed to ${this.channel}`));
    const d = deferred();
    this._subWaiters.push(d);
    return d.promise;
  }

  // _sendConfirmed sends frame() (built when it goes) once subscribed on a
  // live connection, again after a drop, and resolves when the server took
  // it.
  async _sendConfirmed(frame) {
    for (;;) {
      if (!this.active) throw new TandemError("closed", `not subscribed to ${this.channel}`);
      if (!this._subscribed || !this.client._live) {
        await this._whenSubscribed();
        continue;
      }
      try {
        await this.client._confirm(frame());
        return;
      } catch (err) {
        if (err.code !== "disconnected") throw err;
      }
    }
  }

  _deactivate() {
    this._failWaiters(new TandemError("closed", `not subscribed to ${this.channel}`));
    this.active = false;
    if (this.client._subs.get(this.channel) === this) this.client._subs.delete(this.channel);
  }

  /**
   * Publishes a message. options: {ephemeral: true} skips history;
   * {echo: false} leaves this connection out of the delivery. Resolves with
   * {offset} (null for an ephemeral message) once the server stored it.
   * Waits for a connection if there is none.
   */
  async publish(event, data, options = {}) {
    await this.client.whenConnected();
    const frame = { type: "publish", channel: this.channel, event, data };
    if (options.ephemeral) frame.ephemeral = true;
    if (options.echo === false) frame.echo = false;
    const reply = await this.client._requestP(frame);
    if (options.echo === false && reply.offset) {
      // We will not get it: count it as seen, so that it is no gap.
      this._skip.add(reply.offset);
      this._advance();
    }
    return { offset: reply.offset ?? null };
  }

  /** Retracts one of one's own messages (or any, for an admin). */
  async retract(offset) {
    await this.client.whenConnected();
    await this.client._requestP({ type: "retract", channel: this.channel, offset });
  }

  /**
   * Marks the channel read up to offset (a read receipt). Resolves once the
   * server has stored it (waiting for a connection if there is none);
   * rejects with a TandemError if it refuses it.
   */
  markRead(offset) {
    this._unread = Math.max(this._unread ?? 0, offset); // resent after a reconnection until taken
    return this._sendConfirmed(() => ({ type: "read", channel: this.channel, offset: this._unread ?? offset })).then(() => {
      if (this._unread != null && this._unread <= offset) this._unread = null;
    });
  }

  /** Unsubscribes; the subscription stays inactive. */
  async unsubscribe() {
    if (!this.active) return;
    this._deactivate();
    if (this.client._live) {
      try {
        await this.client._requestP({ type: "unsubscribe", channel: this.channel });
      } catch {
        // Disconnected: the server forgot us anyway.
      }
    }
  }
}

/**
 * Presence is who is in a channel. Events: "join", "leave", "update" (each
 * with the member), "count" (count-only channels), "mode" ("count" when a
 * large room stops listing members, "full" when it lists them again),
 * "sync" (the list after each subscribed) and "change" (after any of
 * them, with the list). In a large room the list fills in page by page.
 */
class Presence extends Emitter {
  constructor(sub) {
    super();
    this._sub = sub;
  }
  /** Members present, by client id: {clientId, user, state} (a copy). */
  get members() {
    return new Map(this._sub._members);
  }
  /** How many are present (count-only channels give only this). */
  get count() {
    return this._sub._memberCount ?? this._sub._members.size;
  }
  /**
   * Sets this connection's presence state (a JSON object), kept across
   * reconnects. Resolves once the server has taken it (waiting for the
   * subscription if need be); rejects with a TandemError if it refuses it
   * (too large, forbidden).
   */
  set(state) {
    const sub = this._sub;
    sub._presenceState = state ?? {};
    return sub._sendConfirmed(() => ({ type: "presence", channel: sub.channel, state: sub._presenceState }));
  }
  _onFrame(f) {
    const members = this._sub._members;
    switch (f.event) {
      case "join":
      case "update":
        members.set(f.member.client_id, memberOf(f.member));
        break;
      case "leave":
        members.delete(f.member.client_id);
        break;
      case "count":
        this._sub._memberCount = f.count;
        break;
      case "batch": // several changes in one frame: each is emitted
        for (const e of f.events) {
          if (e.event === "leave") members.delete(e.member.client_id);
          else members.set(e.member.client_id, memberOf(e.member));
          if (e.event !== "join" || e.member.client_id !== this._sub.client.clientId) this._emit(e.event, memberOf(e.member));
        }
        if (this._sub._memberCount != null) this._sub._memberCount = f.count;
        this._emit("change", this.members);
        return;
      case "mode": // a large room switched to count mode, or back
        this._sub._memberCount = f.count;
        if (f.mode === "count") members.clear();
        else this._sub._fetchMembers();
        this._emit("mode", f.mode);
        this._emit("change", this.members);
        return;
      default:
        return;
    }
    this._emit(f.event, f.event === "count" ? f.count : memberOf(f.member));
    this._emit("change", this.members);
  }
}

// ---------------------------------------------------------------------------
// 7. Documents

const HISTORY = 256; // server ops kept to bring late cursors up to date
const SURROGATE = /[\ud800-\udfff]/;
// Refusals of an op that sending it again cannot cure: it is rolled back.
const REFUSED = new Set(["too_large", "forbidden", "unauthorized", "not_found"]);
const UNDO_LIMIT = 500; // undo steps kept; each remote op transforms them all
const STORAGE_VERSION = 1;
// Above this many UTF-16 units of server text, storage writes are coalesced.
const PERSIST_AT_ONCE = 1 << 18;

/**
 * Doc is an open document, kept in sync by the OT client state machine:
 * synchronized (nothing pending), awaiting an ack (one op in flight), or
 * awaiting an ack with a buffer (later local edits composed into one op).
 *
 * Events: "change" ({op, local, origin, splices, user, clientId, uid,
 * version}), "ack", "synced", "cursors", "presence", "reset" (the text was
 * reloaded, or the document was deleted and created again: reason "epoch";
 * unsent edits may be lost), "closed", "error".
 */
class Doc extends Emitter {
  constructor(client, id, options) {
    super();
    this.client = client;
    this.id = id;
    /** The local text: the server's plus this client's pending edits. */
    this.text = "";
    /** The server version the local text is based on. */
    this.version = 0;
    /** The incarnation of the document version belongs to ("" until known). */
    this.epoch = "";
    /** Whether the text has been loaded (from the server or storage). */
    this.loaded = false;
    this.closed = false;
    /** Others' cursors, by client id: {clientId, user, ranges}, in local positions. */
    this.cursors = new Map();
    /** Who has the document open, by client id: {clientId, user}. */
    this.members = new Map();
    this.comments = new Comments(this);
    this._length = 0;
    this._serverText = "";
    this._inflight = null; // {op, uid}: sent, awaiting its ack
    this._buffer = null; // {op, uid}: local edits made meanwhile, composed
    this._open = false; // open on the live connection
    this._opening = false;
    this._undo = [];
    this._redo = [];
    this._undoGroupMs = options.undoGroupMs ?? 0;
    this._lastEdit = 0;
    this._lastShape = null; // the last local edit's editShape, for undo grouping
    this._lastCaret = -1; // where it left the caret
    this._selection = null;
    this._cursorDirty = false;
    this._history = []; // [{version, op, clientId}] as the server applied them
    this._syncWaiters = [];
    this._replaying = false; // applying the ops of an opened reply
    this._retryDelay = 0; // backoff of op resends and reopens; reset by an ack
    this._persistTimer = null; // a coalesced storage write (see _persist)
    // Whether any text this document held had a surrogate: while not,
    // code points are UTF-16 units and positions need no scan of the text.
    this._astral = false;
    this._resetReason = null; // set while a reset waits for its snapshot
    this._resetError = null;
    this._ready = deferred();
    /** Resolves once the server opened the document. */
    this.ready = this._ready.promise;
    this._storage = options.storage === false ? null : client.storage;
    this._storageKey = client.storagePrefix + id;
    this._restore();
  }

  /** The text's length in code points. */
  get length() {
    return this._length;
  }

  /**
   * The state machine's state: "synchronized", "awaiting" (one op in
   * flight) or "awaitingWithBuffer".
   */
  get state() {
    if (!this._inflight) return "synchronized";
    return this._buffer ? "awaitingWithBuffer" : "awaiting";
  }

  /** Whether some local edits are not acknowledged yet. */
  get pending() {
    return this._inflight !== null;
  }

  get canUndo() {
    return this._undo.length > 0;
  }

  get canRedo() {
    return this._redo.length > 0;
  }

  /** Converts a code-point position in the text to a UTF-16 index. */
  toUTF16(cp) {
    if (!this._astral) return Math.min(Math.max(cp, 0), this.text.length);
    return codePointToUtf16(this.text, cp);
  }

  /** Converts a UTF-16 index in the text to a code-point position. */
  fromUTF16(index) {
    if (!this._astral) return Math.min(Math.max(index, 0), this.text.length);
    return utf16ToCodePoint(this.text, index);
  }

  // _note records whether text (or an op's inserts) has surrogates.
  _note(x) {
    if (this._astral) return;
    if (typeof x === "string") this._astral = SURROGATE.test(x);
    else for (const c of x) if (typeof c === "string" && SURROGATE.test(c)) this._astral = true;
  }

  // ----- storage

  _restore() {
    if (!this._storage) return;
    let saved;
    try {
      const raw = this._storage.getItem(this._storageKey);
      if (!raw) return;
      saved = JSON.parse(raw);
    } catch {
      return;
    }
    if (!saved || saved.v !== STORAGE_VERSION || typeof saved.text !== "string") return;
    try {
      let text = saved.text;
      const inflight = saved.inflight ? { op: normalize(saved.inflight.op), uid: String(saved.inflight.uid) } : null;
      const buffer = saved.buffer ? { op: normalize(saved.buffer.op), uid: String(saved.buffer.uid) } : null;
      this._serverText = text;
      this._note(text);
      if (inflight) this._note(inflight.op);
      if (buffer) this._note(buffer.op);
      if (inflight) text = apply(text, inflight.op);
      if (buffer) text = apply(text, buffer.op);
      this.text = text;
      this._length = codePointLength(text);
      this.version = saved.version | 0;
      this.epoch = typeof saved.epoch === "string" ? saved.epoch : "";
      this._inflight = inflight ?? (buffer ? buffer : null);
      this._buffer = inflight ? buffer : null;
      this.loaded = true;
    } catch {
      // A corrupt entry: start from the server.
      this._serverText = "";
      this.text = "";
      this._length = 0;
      this._inflight = this._buffer = null;
    }
  }

  // _persist keeps the pending edits, with the server text and version they
  // are based on, in storage; with nothing pending it removes the entry.
  // Web storage writes are synchronous and cost in proportion to the entry:
  // for a large document they are coalesced to one a second (and made at
  // once when the page is hidden or the document closed), not one per op.
  _persist() {
    if (!this._storage) return;
    if (Math.max(this._serverText.length, this.text.length) > PERSIST_AT_ONCE) {
      if (this._persistTimer == null) {
        this._persistTimer = this.client._setTimer(() => {
          this._persistTimer = null;
          this._writeStorage();
        }, 1000);
      }
      return;
    }
    this._writeStorage();
  }

  // _flushStorage makes a coalesced storage write now.
  _flushStorage() {
    if (this._persistTimer == null) return;
    this.client._clearTimer(this._persistTimer);
    this._persistTimer = null;
    this._writeStorage();
  }

  _writeStorage() {
    const s = this._storage;
    if (!s) return;
    try {
      if (!this._inflight) {
        s.removeItem(this._storageKey);
        return;
      }
      s.setItem(
        this._storageKey,
        JSON.stringify({
          v: STORAGE_VERSION,
          doc: this.id,
          version: this.version,
          epoch: this.epoch,
          text: this._serverText,
          inflight: this._inflight,
          buffer: this._buffer,
          saved: new Date().toISOString(),
        }),
      );
    } catch (err) {
      this._emit("error", new TandemError("storage", `cannot save pending edits: ${err?.message ?? err}`));
    }
  }

  // ----- opening

  _reopen() {
    if (this.closed || !this.client._live) return;
    const frame = { type: "open", doc: this.id };
    const withVersion = this.loaded && !this._resetReason;
    if (withVersion) {
      frame.version = this.version;
      // A version of a document since deleted and created again gets a
      // snapshot marked reset instead of the new one's ops.
      if (this.epoch) frame.epoch = this.epoch;
    }
    this._opening = true;
    this.client._request(frame, (reply) => this._onOpenReply(reply, withVersion));
  }

  _onOpenReply(f, withVersion) {
    this._opening = false;
    if (this.closed) return;
    if (f.type === "snapshot") this._onSnapshot(f);
    else if (f.type === "opened") this._onOpened(f);
    else if (f.type === "error") {
      if (f.code === "disconnected") return;
      const err = errorOf(f);
      if (withVersion && (f.code === "conflict" || f.code === "bad_request")) {
        // History gone (compacted) or a version the server does not have.
        this._reset("history", err);
      } else if (f.code === "unavailable" || f.code === "internal" || f.code === "rate_limited") {
        this.client._setTimer(() => this._reopen(), this._nextRetry());
        this._emit("error", err);
      } else {
        this._emit("error", err);
        if (!this.loaded) this._ready.reject(err);
        this._closeLocal(f.code);
      }
    }
  }

  _onSnapshot(f) {
    if (f.reset && !this._resetReason) {
      this._resetReason = "epoch";
      this._resetError = new TandemError("reset", "the document was deleted and created again");
    }
    this.epoch = typeof f.epoch === "string" ? f.epoch : "";
    const old = this.text;
    const base = this._serverText;
    const lost = [this._inflight, this._buffer].filter(Boolean);
    this._inflight = this._buffer = null;
    this._undo = [];
    this._redo = [];
    this._history = [];
    this._serverText = f.content;
    this.text = f.content;
    this._astral = false;
    this._note(old);
    this._note(f.content);
    this._length = this._astral ? codePointLength(f.content) : f.content.length;
    this.version = f.version;
    const wasLoaded = this.loaded;
    this.loaded = true;
    this._open = true;
    this._setMeta(f);
    this._persist();
    if (wasLoaded || old !== "") {
      const op = minimalOp(old, this.text);
      if (!isNoop(op)) {
        const { splices } = applyWithSplices(old, op, true);
        this._emit("change", { op, local: false, origin: "reset", splices, version: this.version });
      }
    }
    if (this._resetReason) {
      const e = { reason: this._resetReason, error: this._resetError, lost, base };
      this._resetReason = this._resetError = null;
      this._emit("reset", e);
    }
    this._afterOpen();
  }

  _onOpened(f) {
    if (typeof f.epoch === "string" && f.epoch) this.epoch = f.epoch;
    this._open = true;
    this._replaying = true;
    try {
      for (const rec of f.ops ?? []) this._onRemoteOp(rec);
    } finally {
      this._replaying = false;
    }
    if (this.version !== f.version) {
      // Should not happen: the server replays every op up to its head.
      this._reset("gap", new TandemError("internal", `opened at v${this.version}, server at v${f.version}`));
      return;
    }
    this._setMeta(f);
    this._afterOpen();
  }

  _afterOpen() {
    if (this._inflight) this._sendInflight();
    if (this._selection) this._sendCursor();
    this._ready.resolve(this);
    this._emit("open", { version: this.version });
    this._checkSynced();
  }

  // _setMeta takes the comments, members and cursors of snapshot/opened.
  _setMeta(f) {
    this.members = new Map((f.members ?? []).map((m) => [m.client_id, memberOf(m)]));
    this.cursors = new Map();
    for (const c of f.cursors ?? []) this._takeCursor(c, false);
    this.comments._reset(f.comments ?? []);
    this._emit("presence", { event: "sync", members: this.members });
    this._emit("cursors", this.cursors);
  }

  // _reset reloads the document from a snapshot, which replaces the local
  // state: edits made until it arrives are reported lost with the pending
  // ones.
  _reset(reason, err) {
    this._resetReason = reason;
    this._resetError = err;
    this._open = false;
    if (this.client._live) this._reopen();
  }

  _onDisconnect() {
    this._open = false;
    this._opening = false;
  }

  _onClientClosed(why) {
    this._flushStorage();
    this._open = false;
    this._ready.reject(why);
    for (const w of this._syncWaiters) w.reject(why);
    this._syncWaiters = [];
  }

  _closeLocal(reason) {
    this._flushStorage();
    this.closed = true;
    this._open = false;
    if (this.client._docs.get(this.id) === this) this.client._docs.delete(this.id);
    for (const w of this._syncWaiters) w.reject(new TandemError("closed", `document closed: ${reason}`));
    this._syncWaiters = [];
    this._emit("closed", { reason });
  }

  /**
   * Closes the document. Pending edits are given up to options.timeout ms
   * (default 5000) to be acknowledged first; whatever is still pending
   * then stays in storage for the next openDoc.
   */
  async close(options = {}) {
    if (this.closed) return;
    if (this._inflight && this.client._live) {
      const timeout = options.timeout ?? 5000;
      await Promise.race([this.synced().catch(() => {}), new Promise((r) => setTimeout(r, timeout))]);
    }
    if (this.closed) return;
    const wasOpen = this._open && this.client._live;
    this._closeLocal("closed");
    if (wasOpen) {
      try {
        await this.client._requestP({ type: "close", doc: this.id });
      } catch {
        // Disconnected: the server closed it for us.
      }
    }
  }

  /** Resolves when every local edit is acknowledged (at once if none is pending). */
  synced() {
    if (!this._inflight) return Promise.resolve();
    const d = deferred();
    this._syncWaiters.push(d);
    return d.promise;
  }

  // _whenOpen resolves at the next open, and rejects if the document closes.
  _whenOpen() {
    return new Promise((resolve, reject) => {
      const offOpen = this.once("open", () => {
        offClosed();
        resolve();
      });
      const offClosed = this.once("closed", () => {
        offOpen();
        reject(new TandemError("closed", `document ${this.id} is closed`));
      });
    });
  }

  _checkSynced() {
    if (this._inflight) return;
    const ws = this._syncWaiters;
    this._syncWaiters = [];
    for (const w of ws) w.resolve();
    this._emit("synced", { version: this.version });
  }

  // ----- the state machine: frames from the server, acks, remote ops
  // transformed over what is in flight and buffered, sending, retries and
  // rollbacks of refused ops

  _onFrame(f) {
    if (this.closed) return;
    switch (f.type) {
      case "op":
        if (this._open) this._onRemoteOp(f);
        return;
      case "ack":
        if (this._open) this._onAck(f);
        return;
      case "cursor":
        if (this._open) {
          this._takeCursor(f, true);
          this._emit("cursors", this.cursors);
        }
        return;
      case "comment":
        if (this._open) this.comments._onFrame(f, false);
        return;
      case "snapshot":
      case "opened":
        return; // replies to requests we gave up on
      case "presence":
        if (f.event === "join") this.members.set(f.member.client_id, memberOf(f.member));
        else if (f.event === "leave") {
          this.members.delete(f.member.client_id);
          if (this.cursors.delete(f.member.client_id)) this._emit("cursors", this.cursors);
        }
        this._emit("presence", { event: f.event, member: memberOf(f.member), members: this.members });
        return;
      case "closed":
        // The server closed the document (its storage failed): reopen.
        this._open = false;
        this._emit("error", new TandemError(f.reason || "unavailable", "the server closed the document; reopening"));
        this.client._setTimer(() => this._reopen(), this._nextRetry());
        return;
      case "unsubscribed":
        this._closeLocal(f.reason || "unsubscribed");
        return;
    }
  }

  _pushHistory(version, op, clientId) {
    this._history.push({ version, op, clientId });
    if (this._history.length > HISTORY) this._history.splice(0, this._history.length - HISTORY);
  }

  _onAck(f) {
    if (!this._inflight || f.uid !== this._inflight.uid) return; // a late ack of a resend
    if (f.version !== this.version) {
      // We missed ops before ours: catch up through a reopen (our op is
      // found among the replayed ones by its uid).
      if (f.version > this.version) this._catchUp();
      return;
    }
    const op = this._inflight.op;
    this._serverText = applyWithSplices(this._serverText, op, false, !this._astral).text;
    this._pushHistory(this.version, op, this.client.clientId);
    this.version++;
    this._retryDelay = 0;
    this._inflight = this._buffer;
    this._buffer = null;
    this._persist();
    this._emit("ack", { version: f.version, uid: f.uid });
    if (this._inflight) {
      if (!this._replaying) this._sendInflight();
    } else {
      if (this._cursorDirty && this._selection) this._sendCursor();
      this._checkSynced();
    }
  }

  _catchUp() {
    if (this._opening) return;
    this._open = false;
    this._reopen();
  }

  _onRemoteOp(f) {
    if (f.version < this.version) return; // seen
    if (f.version > this.version) {
      this._catchUp();
      return;
    }
    if (this._inflight && f.uid === this._inflight.uid) {
      // Our own op, applied by an earlier connection: that is its ack.
      this._onAck(f);
      return;
    }
    let op = f.op;
    this._note(op);
    this._serverText = applyWithSplices(this._serverText, op, false, !this._astral).text;
    this._pushHistory(f.version, op, f.client_id);
    if (this._inflight) {
      // The incoming op's inserts first: the server applied it before ours.
      [op, this._inflight.op] = transform(op, this._inflight.op);
      if (this._buffer) [op, this._buffer.op] = transform(op, this._buffer.op);
    }
    this.version++;
    const { text, splices } = applyWithSplices(this.text, op, true, !this._astral);
    this.text = text;
    this._length += delta(op);
    this._undo = transformStack(this._undo, op);
    this._redo = transformStack(this._redo, op);
    if (this._lastCaret >= 0) this._lastCaret = transformIndex(op, this._lastCaret, false);
    for (const c of this.cursors.values()) c.ranges = c.ranges.map((r) => transformSelection(op, r, c.clientId === f.client_id));
    if (this._selection) this._selection = this._selection.map((r) => transformSelection(op, r, false));
    this.comments._transform(op);
    if (this._inflight) this._persist();
    this._emit("change", {
      op,
      local: false,
      origin: "remote",
      splices,
      user: f.user,
      clientId: f.client_id,
      uid: f.uid,
      version: this.version,
    });
  }

  _sendInflight() {
    if (!this._open || !this.client._live || !this._inflight) return;
    this._fitInflight();
    const inflight = this._inflight;
    this.client._watchAcks();
    this.client._request({ type: "op", doc: this.id, version: this.version, op: inflight.op, uid: inflight.uid }, (reply) => {
      if (reply.type === "ack") {
        this._onAck(reply);
        return;
      }
      if (reply.type !== "error" || reply.code === "disconnected" || this._inflight !== inflight) return;
      if (reply.code === "rate_limited") {
        this.client._setTimer(() => {
          if (this._inflight === inflight) this._sendInflight();
        }, this._nextRetry());
      } else if (reply.code === "unavailable" || reply.code === "internal") {
        // The server closes the document and tells us; we reopen then.
        this._emit("error", errorOf(reply));
      } else if (REFUSED.has(reply.code)) {
        // The server will never take this op: take it back.
        this._rollback(errorOf(reply));
      } else {
        // bad_request, conflict: our idea of the server's text is wrong;
        // start over from its text.
        this._emit("error", errorOf(reply));
        this._reset("rejected", errorOf(reply));
      }
    });
  }

  // _nextRetry returns the delay before the next resend or reopen after a
  // transient failure: 500 ms doubling to 30 s, with jitter, until an ack.
  _nextRetry() {
    this._retryDelay = Math.min(30000, this._retryDelay ? this._retryDelay * 2 : 500);
    return Math.round(this._retryDelay / 2 + Math.random() * (this._retryDelay / 2));
  }

  // _fitInflight cuts the op in flight to the server's limits (an encoded
  // frame under maxFrameBytes, inserts under maxOpBytes) before it is
  // sent: the rest goes in front of the buffer, to be sent after its ack.
  // An op that does not fit was never applied (the server refuses it
  // whole), so its head may keep its uid.
  _fitInflight() {
    const lim = this.client.limits;
    const inflight = this._inflight;
    const frame = { id: Number.MAX_SAFE_INTEGER, type: "op", doc: this.id, version: Number.MAX_SAFE_INTEGER, op: [], uid: inflight.uid };
    const limits = { maxInsertBytes: lim.maxOpBytes, maxJSONBytes: lim.maxFrameBytes - (utf8Length(JSON.stringify(frame)) - 2) };
    // splitHead reads no further than the head: a fitting op is read once.
    const [head, rest] = splitHead(inflight.op, limits);
    if (rest === null) return;
    inflight.op = head;
    inflight.split = true; // the buffer starts with the rest of this edit
    if (this._buffer) this._buffer.op = compose(rest, this._buffer.op);
    else this._buffer = { op: rest, uid: this.client._newUid() };
    this._persist();
  }

  // _rollback takes back the op in flight, which the server refused for
  // good (too_large, forbidden, ...), and reports it once as an error: the
  // local text becomes what the server has plus the edits made after it,
  // moved over its undoing. When the op was the head of an edit cut in
  // pieces, the rest of that edit (and what was typed after it meanwhile)
  // is taken back too: it would be refused the same way.
  _rollback(err) {
    const inflight = this._inflight;
    const dropped = [inflight.op];
    let undo;
    if (inflight.split && this._buffer) {
      dropped.push(this._buffer.op);
      undo = invert(compose(inflight.op, this._buffer.op), this._serverText);
      this._buffer = null;
    } else {
      undo = invert(inflight.op, this._serverText);
      if (this._buffer) [undo, this._buffer.op] = transform(undo, this._buffer.op);
    }
    this._inflight = null;
    const { text, splices } = applyWithSplices(this.text, undo, true);
    this.text = text;
    this._length += delta(undo);
    this._undo = transformStack(this._undo, undo);
    this._redo = transformStack(this._redo, undo);
    for (const c of this.cursors.values()) c.ranges = c.ranges.map((r) => transformSelection(undo, r, false));
    if (this._selection) this._selection = this._selection.map((r) => transformSelection(undo, r, false));
    this.comments._transform(undo);
    if (this._buffer && !isNoop(this._buffer.op)) this._inflight = this._buffer;
    this._buffer = null;
    this._persist();
    err.ops = dropped;
    this._emit("change", { op: undo, local: true, origin: "rejected", splices, uid: inflight.uid, version: this.version });
    this._emit("error", err);
    if (this._inflight) this._sendInflight();
    else this._checkSynced();
  }

  // ----- local edits

  /** Inserts text at code point pos. */
  insert(pos, text) {
    this.submit(splice(pos, 0, text));
  }

  /** Deletes count code points at pos. */
  delete(pos, count) {
    this.submit(splice(pos, count, ""));
  }

  /** Deletes count code points at pos and inserts text there. */
  replace(pos, count, text) {
    this.submit(splice(pos, count, text));
  }

  /**
   * Replaces deleteCount UTF-16 units at UTF-16 index (an editor's change)
   * with text.
   */
  spliceUTF16(index, deleteCount, text) {
    const from = this.fromUTF16(index);
    const to = this.fromUTF16(index + deleteCount);
    this.submit(splice(from, to - from, text));
  }

  /**
   * Applies op (code points, against the current local text) as a local
   * edit and sends it. Throws OpError if it does not fit the text.
   */
  submit(op, options = {}) {
    if (this.closed) throw new TandemError("closed", `document ${this.id} is closed`);
    if (!this.loaded) throw new TandemError("not_ready", `document ${this.id} is not loaded yet: await doc.ready`);
    if (!Array.isArray(op)) throw new OpError("op is not an array");
    op = normalize(op.map((c) => (typeof c === "string" ? wellFormed(c) : c)));
    check(op, this._length);
    if (isNoop(op)) return;
    const origin = options.origin ?? "local";
    this._note(op);
    const inverse = invertText(op, this.text, !this._astral);
    const { text, splices } = applyWithSplices(this.text, op, true, !this._astral);
    this.text = text;
    this._length += delta(op);
    for (const c of this.cursors.values()) c.ranges = c.ranges.map((r) => transformSelection(op, r, false));
    if (this._selection) this._selection = this._selection.map((r) => transformSelection(op, r, true));
    this.comments._transform(op);
    const now = Date.now();
    if (origin === "undo") this._redo.push(inverse);
    else {
      if (origin === "redo") this._undo.push(inverse);
      else {
        // Edits undo together, as editors group them, when they come within
        // undoGroupMs of each other, are of one kind (typing, or deleting)
        // and each starts where the last left the caret.
        const shape = editShape(op);
        const group =
          this._undoGroupMs > 0 &&
          now - this._lastEdit < this._undoGroupMs &&
          this._undo.length > 0 &&
          shape !== null &&
          this._lastShape !== null &&
          shape.kind === this._lastShape.kind &&
          (shape.kind === "insert" ? shape.at === this._lastCaret : shape.at + shape.n === this._lastCaret || shape.at === this._lastCaret);
        if (group) this._undo[this._undo.length - 1] = compose(inverse, this._undo[this._undo.length - 1]);
        else this._undo.push(inverse);
        this._redo = [];
        this._lastShape = shape;
        this._lastCaret = shape === null ? -1 : shape.kind === "insert" ? shape.at + shape.n : shape.at;
      }
      if (this._undo.length > UNDO_LIMIT) this._undo.splice(0, this._undo.length - UNDO_LIMIT);
    }
    this._lastEdit = origin === "local" ? now : 0;
    let uid;
    if (!this._inflight) {
      this._inflight = { op, uid: (uid = this.client._newUid()) };
      this._persist();
      this._sendInflight();
    } else {
      if (!this._buffer) this._buffer = { op, uid: this.client._newUid() };
      else this._buffer.op = compose(this._buffer.op, op);
      uid = this._buffer.uid;
      this._persist();
    }
    this._emit("change", { op, local: true, origin, splices, uid, version: this.version });
  }

  /**
   * Undoes this client's last edit that is still undoable, moved over
   * everyone's edits since; others' edits are never undone. Returns false
   * when there is nothing to undo.
   */
  undo() {
    const op = this._undo.pop();
    if (!op) return false;
    this.submit(op, { origin: "undo" });
    return true;
  }

  /** Redoes the last undone edit. Returns false when there is nothing to redo. */
  redo() {
    const op = this._redo.pop();
    if (!op) return false;
    this.submit(op, { origin: "redo" });
    return true;
  }

  // ----- cursors

  /**
   * Sets this client's selections: [{anchor, head}] in code points of the
   * local text. With edits pending, the ranges are sent mapped back to the
   * server version (the server moves them through those edits as they
   * land), and sent again exactly once everything is acknowledged.
   */
  setSelection(ranges) {
    const n = this._length;
    const clamp = (x) => Math.min(Math.max(Math.trunc(x) || 0, 0), n);
    this._selection = (ranges ?? []).map((r) => ({ anchor: clamp(r.anchor), head: clamp(r.head ?? r.anchor) }));
    // A caret moved elsewhere than the last edit left it ends an undo group.
    const s0 = this._selection[0];
    if (!s0 || s0.anchor !== s0.head || s0.head !== this._lastCaret) this._lastEdit = 0;
    this._sendCursor();
  }

  /** This client's selections as last set and moved by edits since. */
  get selection() {
    return this._selection ? this._selection.map((r) => ({ ...r })) : null;
  }

  // _unmap maps a local position to the server version: back through the
  // buffer, then the op in flight.
  _unmap(pos) {
    if (this._buffer) pos = unmapIndex(this._buffer.op, pos);
    if (this._inflight) pos = unmapIndex(this._inflight.op, pos);
    return pos;
  }

  _sendCursor() {
    if (!this._open || !this._selection) return;
    const ranges = this._selection.map((r) => ({ anchor: this._unmap(r.anchor), head: this._unmap(r.head) }));
    this._cursorDirty = this._inflight !== null;
    this.client._send({ type: "cursor", doc: this.id, version: this.version, ranges });
  }

  // _takeCursor stores another client's cursor, moved from its version to
  // the local text: through the server ops since (own when that client made
  // them) and our pending edits.
  _takeCursor(f, live) {
    if (f.client_id === this.client.clientId) return;
    let ranges = (f.ranges ?? []).map((r) => ({ anchor: r.anchor, head: r.head }));
    if (f.version < this.version) {
      for (const h of this._history) {
        if (h.version >= f.version) ranges = ranges.map((r) => transformSelection(h.op, r, h.clientId === f.client_id));
      }
    }
    for (const p of [this._inflight, this._buffer]) {
      if (p) ranges = ranges.map((r) => transformSelection(p.op, r, false));
    }
    const n = this._length;
    ranges = ranges.map((r) => ({ anchor: Math.min(Math.max(r.anchor, 0), n), head: Math.min(Math.max(r.head, 0), n) }));
    this.cursors.set(f.client_id, { clientId: f.client_id, user: f.user ?? this.members.get(f.client_id)?.user ?? null, ranges });
    if (live) this._emit("cursor", this.cursors.get(f.client_id));
  }
}

// editShape describes a local edit for undo grouping: {kind: "insert",
// at, n} for text typed at one place, {kind: "delete", at, n} for text
// deleted at one place, null for anything else (a replacement, several
// places).
function editShape(op) {
  let at = 0;
  let i = 0;
  if (typeof op[0] === "number" && op[0] > 0) {
    at = op[0];
    i = 1;
  }
  if (op.length - i !== 1) return null;
  const c = op[i];
  if (typeof c === "string") return { kind: "insert", at, n: codePointLength(c) };
  return { kind: "delete", at, n: -c };
}

// transformStack moves an undo or redo stack over op, which applies to the
// current text, as ot.js's UndoManager does: the top entry applies to the
// current text, each one below it to the text before the edit above it.
// Entries that become no-ops (their text is gone) are dropped.
function transformStack(stack, op) {
  const out = [];
  for (let i = stack.length - 1; i >= 0; i--) {
    const [e, o] = transform(stack[i], op);
    if (!isNoop(e)) out.push(e);
    op = o;
  }
  return out.reverse();
}

// ---------------------------------------------------------------------------
// 8. Comments

/**
 * Comments are a document's comment threads, ranges in local code points.
 * Event "change": {action: add|edit|resolve|reopen|delete|sync, comment,
 * local}.
 */
class Comments extends Emitter {
  constructor(doc) {
    super();
    this._doc = doc;
    this._map = new Map();
    this._tracked = new Set(); // ranges of adds waiting to be sent
  }

  /** Every comment: {id, range, user, text, parent, resolved, createdAt, updatedAt}. */
  list() {
    return [...this._map.values()];
  }

  /** The comment with that id, if any. */
  get(id) {
    return this._map.get(id);
  }

  /**
   * Adds a comment on range {from, to} (local code points). Resolves with
   * the comment. When the range's text is still in unacknowledged edits, the
   * add waits for their ack (the range follows edits meanwhile).
   */
  add(range, text) {
    return this._request(null, { from: range.from, to: range.to }, text);
  }

  /** Replies to a comment; the reply sits on its thread's text. */
  reply(parentId, text) {
    const parent = this._map.get(parentId);
    return this._request(null, parent ? { ...parent.range } : { from: 0, to: 0 }, text, parentId);
  }

  /** Changes one's own comment's text. */
  edit(id, text) {
    return this._request({ action: "edit", comment_id: id, text });
  }

  /** Marks a thread resolved. */
  resolve(id) {
    return this._request({ action: "resolve", comment_id: id });
  }

  /** Reopens a resolved thread. */
  reopen(id) {
    return this._request({ action: "reopen", comment_id: id });
  }

  /** Deletes one's own comment. */
  delete(id) {
    return this._request({ action: "delete", comment_id: id });
  }

  // _request waits until the document is open on a live connection and
  // sends a comment frame. An add gives its range (tracked through edits
  // while it waits) instead of fields: it first waits for pending edits to
  // be acked, since text that only they hold has no server position yet.
  async _request(fields, range, text, parent = null) {
    const d = this._doc;
    if (range) this._tracked.add(range);
    try {
      await d.ready;
      let waitedSync = false;
      for (;;) {
        if (d.closed) throw new TandemError("closed", `document ${d.id} is closed`);
        if (!d.client._live) await d.client.whenConnected();
        else if (!d._open) await d._whenOpen();
        else if (range && d.pending && !waitedSync) {
          waitedSync = true;
          await d.synced();
        } else break;
      }
    } finally {
      if (range) this._tracked.delete(range);
    }
    if (range) {
      fields = {
        action: "add",
        version: d.version,
        range: { from: d._unmap(range.from), to: d._unmap(range.to) },
        text,
        parent,
      };
    }
    const reply = await d.client._requestP({ type: "comment", doc: d.id, ...fields });
    return this._onFrame(reply, true);
  }

  _onFrame(f, local) {
    const c = this._local(f.comment);
    if (f.action === "delete") this._map.delete(c.id);
    else this._map.set(c.id, c);
    this._emit("change", { action: f.action, comment: c, local });
    return c;
  }

  // _local moves a comment's range from the server version to the local
  // text, through our pending edits.
  _local(c) {
    const d = this._doc;
    let range = { from: c.range.from, to: c.range.to };
    for (const p of [d._inflight, d._buffer]) if (p) range = transformRange(p.op, range);
    // camelCase, with the protocol's names kept as deprecated aliases.
    return { ...c, range, createdAt: c.created_at, updatedAt: c.updated_at };
  }

  _transform(op) {
    for (const c of this._map.values()) c.range = transformRange(op, c.range);
    for (const r of this._tracked) Object.assign(r, transformRange(op, r));
  }

  _reset(list) {
    this._map = new Map();
    for (const c of list) this._map.set(c.id, this._local(c));
    this._emit("change", { action: "sync", comment: null, local: false });
  }
}
