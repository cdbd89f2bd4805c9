// sync.js: EditorSync, the editor-independent half of the Tandem editor
// bindings (codemirror/index.js, monaco/index.js). It keeps an editor's text equal to a
// tandem.js Doc's text and carries selections, others' cursors and comments
// between the two. docs/editors.md explains the rules it follows, for
// anyone binding another editor.
//
// An editor is reached through an adapter, in the editor's own UTF-16
// indices:
//
//   text()           the editor's whole text
//   length()         its length in UTF-16 units (cheap)
//   apply(splices)   apply [{index, deleteCount, text}], each in the text
//                    the previous one left, as a change that is not the
//                    local user's: out of the user's undo history, and not
//                    reported back through local()
//   selection()      [{anchor, head}], the main range first, or null
//   composing()      whether an IME composition is in progress
//   busy()           whether the editor cannot take apply() now (it is in
//                    the middle of an update)
//   render({cursors, comments})  show others' carets and selections and
//                    the comment marks (positions in UTF-16)
//   setEditable(on)  allow or refuse typing (refused until the text loads)
//
// and the adapter calls local(edits, lengthBefore) for each change the user
// makes, selectionChanged() when the selection moves, and compositionEnd()
// when an IME composition ends.
//
// Invariant: outside a composition, the editor's text equals doc.text
// between events. During a composition the editor's changes are not sent
// (they may be half-composed text) and the document's changes are not
// applied (they would break the composition); both are kept as ops and
// reconciled with one transform when the composition ends.

import { compose, isNoop, transform } from "./client.js";
import { PositionIndex, applyEdits, diff, editsExact, editsToOp, opToSplices } from "./positions.js";

/** The colours cursors are drawn in when a user has none (the server's palette). */
export const PALETTE = ["#e0457b", "#3b82f6", "#10b981", "#f59e0b", "#8b5cf6", "#ef4444", "#14b8a6", "#f97316", "#6366f1", "#84cc16"];

/** Returns color if it is a plain CSS hex colour, else a palette colour picked by seed. */
export function safeColor(color, seed) {
  if (typeof color === "string" && /^#[0-9a-fA-F]{3,8}$/.test(color)) return color;
  let h = 2166136261;
  for (const ch of String(seed)) h = Math.imul(h ^ ch.codePointAt(0), 16777619);
  return PALETTE[(h >>> 0) % PALETTE.length];
}

// member finds a member by client id in a Map or an array of members.
function member(members, clientId) {
  if (!members) return undefined;
  if (typeof members.get === "function") return members.get(clientId);
  if (Array.isArray(members)) return members.find((m) => (m.clientId ?? m.client_id) === clientId);
  return undefined;
}

export class EditorSync {
  /**
   * @param doc a tandem.js Doc
   * @param adapter the editor, as described at the top of this file
   * @param options.selectionDelay ms to coalesce selection updates (50)
   * @param options.showResolved show resolved comments' marks too (false)
   * @param options.onCaretComments called with the comments (thread heads)
   *   under the main caret whenever that set changes
   * @param options.onError called with errors the binding recovered from
   *   (an edit the document refused, a text that had to be resynchronised)
   */
  constructor(doc, adapter, options = {}) {
    this.doc = doc;
    this.adapter = adapter;
    this.selectionDelay = options.selectionDelay ?? 50;
    this.showResolved = !!options.showResolved;
    this.readOnly = !!options.readOnly;
    this.onCaretComments = options.onCaretComments ?? null;
    this.onError = options.onError ?? ((err) => console.error("tandem binding:", err));
    this.submitting = false; // inside doc.submit: its change events are ours
    this.applying = false; // inside adapter.apply: the editor's events are not local
    this.held = null; // during a composition: {text, local, remote, resync}
    this.destroyed = false;
    this._index = null;
    this._offs = [];
    this._renderQueued = false;
    this._selTimer = null;
    this._flushTimer = null;
    this._caretKey = "";
  }

  /** Starts following the document: call once the editor can take apply(). */
  start() {
    const d = this.doc;
    this._offs.push(
      d.on("change", (e) => this._onChange(e)),
      d.on("open", () => this._onOpen()),
      d.on("cursors", () => this._renderSoon()),
      d.on("closed", () => this._setEditable()),
      d.comments.on("change", () => this._renderSoon()),
    );
    this._onOpen();
  }

  /** Stops following the document (the editor keeps its text). */
  destroy() {
    this.destroyed = true;
    for (const off of this._offs) off();
    this._offs = [];
    clearTimeout(this._selTimer);
    clearTimeout(this._flushTimer);
  }

  /** A PositionIndex of doc.text (cached until the text changes). */
  get index() {
    const t = this.doc.text;
    if (this._index === null || this._index.text !== t) this._index = new PositionIndex(t, this.doc.length === t.length);
    return this._index;
  }

  /** Converts a UTF-16 index of the editor's text to a code point of the document. */
  toCodePoint(i) {
    return this.index.toCodePoint(i);
  }

  /** Converts a code point of the document to a UTF-16 index of the editor's text. */
  toUTF16(cp) {
    return this.index.toUTF16(cp);
  }

  /** The comment threads (not replies) whose range holds code point cp. */
  commentsAt(cp) {
    return this.doc.comments.list().filter((c) => !c.parent && (this.showResolved || !c.resolved) && c.range.from <= cp && cp <= c.range.to);
  }

  /**
   * Adds a comment on the main selection (or on range {from, to}, UTF-16)
   * and resolves with it.
   */
  addComment(text, range) {
    if (!range) {
      const s = this.adapter.selection()?.[0] ?? { anchor: 0, head: 0 };
      range = { from: Math.min(s.anchor, s.head), to: Math.max(s.anchor, s.head) };
    }
    return this.doc.comments.add({ from: this.toCodePoint(range.from), to: this.toCodePoint(range.to) }, text);
  }

  // ----- the editor's side

  /**
   * The user changed the editor's text: edits [{from, to, insert}] in
   * UTF-16 indices of the text before (sorted, not overlapping), whose
   * length was lengthBefore.
   */
  local(edits, lengthBefore) {
    if (this.applying || this.destroyed) return;
    edits = edits.filter((e) => e.from !== e.to || e.insert !== "");
    if (edits.length === 0) return;
    const d = this.doc;
    if (!this.held && this.adapter.composing() && d.loaded && lengthBefore === d.text.length) this._hold(d.text);
    if (this.held) {
      this._holdLocal(edits);
      return;
    }
    if (!d.loaded || lengthBefore !== d.text.length) {
      // Typed before the text loaded, or out of step: the document's text
      // wins. (An edit after the document closed is refused by submit,
      // reported, and taken back the same way.)
      if (d.loaded) this._report(new Error(`editor text (${lengthBefore} units) out of step with the document (${d.text.length})`));
      this._resyncSoon();
      return;
    }
    const index = this.index;
    if (editsExact(edits, index)) {
      this._submit(editsToOp(edits, index));
      return;
    }
    // An edit that cuts a surrogate pair or inserts a lone surrogate: send
    // the difference of the texts (the server stores lone surrogates as
    // U+FFFD), then give the editor what the document holds.
    this._submitText(applyEdits(d.text, edits));
    this._resyncSoon();
  }

  /** The user replaced the editor's whole text (e.g. setValue): send the difference. */
  localText() {
    if (this.applying || this.destroyed) return;
    const text = this.adapter.text();
    if (this.held || this.adapter.composing()) {
      if (!this.held) this._hold(this.doc.text);
      const s = diff(this.held.text, text);
      if (s) this._holdLocal([{ from: s.index, to: s.index + s.deleteCount, insert: s.text }]);
      return;
    }
    if (!this.doc.loaded || this.doc.closed) return this._resyncSoon();
    this._submitText(text);
    if (this.doc.text !== text) this._resyncSoon();
  }

  /** The editor's selection moved: it is sent, coalesced, after selectionDelay ms. */
  selectionChanged() {
    if (this.destroyed || this._selTimer !== null) return;
    this._selTimer = setTimeout(() => {
      this._selTimer = null;
      this._sendSelection();
    }, this.selectionDelay);
  }

  /** An IME composition ended: reconcile what it held back. */
  compositionEnd() {
    if (this.held) this._flushSoon();
  }

  /**
   * Makes the editor's text equal to the document's (the document wins),
   * with one splice over the part that differs.
   */
  resync() {
    if (this.destroyed || !this.doc.loaded) return;
    if (this.held) {
      this.held.resync = true;
      return;
    }
    if (this.adapter.busy()) {
      this._resyncSoon();
      return;
    }
    const s = diff(this.adapter.text(), this.doc.text);
    if (s) this._apply([s]);
    this._renderSoon();
  }

  // ----- the document's side

  _onOpen() {
    this._setEditable();
    if (!this.doc.loaded) return;
    this.resync();
    this._renderSoon();
    this.selectionChanged();
  }

  _setEditable() {
    if (this.destroyed) return;
    const d = this.doc;
    this.adapter.setEditable(d.loaded && !d.closed && !this.readOnly);
  }

  _onChange(e) {
    if (this.submitting || this.destroyed) return;
    if (!this.held && (this.adapter.busy() || this.adapter.composing())) {
      // The editor cannot take it now: hold it until it can. The editor
      // still shows the text before this change.
      this._hold(this.adapter.text());
      if (!this.adapter.composing()) this._flushSoon();
    }
    if (this.held) {
      this.held.remote = this.held.remote ? compose(this.held.remote, e.op) : e.op;
      return;
    }
    this._apply(e.splices ?? opToSplices(e.op, this.adapter.text()));
    if (this.adapter.length() !== this.doc.text.length) this.resync();
    this._renderSoon();
    this.selectionChanged();
  }

  _apply(splices) {
    if (splices.length === 0) return;
    this.applying = true;
    let failed = null;
    try {
      this.adapter.apply(splices);
    } catch (err) {
      failed = err;
    } finally {
      this.applying = false;
    }
    if (failed) {
      this._report(failed);
      const s = diff(this.adapter.text(), this.doc.text);
      if (s) {
        this.applying = true;
        try {
          this.adapter.apply([s]);
        } finally {
          this.applying = false;
        }
      }
    }
  }

  _submit(op) {
    if (isNoop(op)) return;
    this.submitting = true;
    try {
      this.doc.submit(op);
    } catch (err) {
      this._report(err);
      this._resyncSoon();
    } finally {
      this.submitting = false;
    }
  }

  // _submitText sends the difference between doc.text and text.
  _submitText(text) {
    const s = diff(this.doc.text, text);
    if (s) this._submit(editsToOp([{ from: s.index, to: s.index + s.deleteCount, insert: s.text }], this.index));
  }

  _resyncSoon() {
    queueMicrotask(() => this.resync());
  }

  // ----- compositions (and changes that come while the editor is busy)

  _hold(text) {
    this.held = { text, local: null, remote: null, resync: false };
  }

  _holdLocal(edits) {
    const h = this.held;
    const index = new PositionIndex(h.text);
    let op;
    if (editsExact(edits, index)) op = editsToOp(edits, index);
    else {
      const s = diff(h.text, applyEdits(h.text, edits));
      op = s ? editsToOp([{ from: s.index, to: s.index + s.deleteCount, insert: s.text }], index) : [];
      h.resync = true;
    }
    if (op.length > 0) h.local = h.local ? compose(h.local, op) : op;
    h.text = applyEdits(h.text, edits);
    if (!this.adapter.composing()) this._flushSoon();
  }

  _flushSoon() {
    if (this._flushTimer !== null) return;
    this._flushTimer = setTimeout(() => {
      this._flushTimer = null;
      this._flush();
    }, 0);
  }

  // _flush ends a hold: the document's changes, moved over the user's, go
  // into the editor; the user's, moved over the document's, go to the
  // document. The document's inserts stand first where both insert at one
  // place, as the server orders an op it applied first.
  _flush() {
    const h = this.held;
    if (!h || this.destroyed || this.adapter.composing()) return;
    if (this.adapter.busy()) {
      this._flushSoon();
      return;
    }
    this.held = null;
    let local = h.local;
    let remote = h.remote;
    if (local && remote) [remote, local] = transform(remote, local);
    if (remote && !isNoop(remote)) this._apply(opToSplices(remote, h.text));
    if (local && !isNoop(local)) {
      if (this.doc.loaded && !this.doc.closed) this._submit(local);
      else h.resync = true;
    }
    if (h.resync || this.adapter.length() !== this.doc.text.length) this.resync();
    this._renderSoon();
    this.selectionChanged();
  }

  // ----- selections, cursors, comments

  _sendSelection() {
    const d = this.doc;
    if (this.destroyed || this.held || !d.loaded || d.closed) return;
    if (this.adapter.length() !== d.text.length) return;
    const sel = this.adapter.selection();
    if (!sel || sel.length === 0) return;
    const index = this.index;
    const ranges = sel.map((r) => ({ anchor: index.toCodePoint(r.anchor), head: index.toCodePoint(r.head) }));
    const cur = d.selection;
    if (!cur || cur.length !== ranges.length || cur.some((r, i) => r.anchor !== ranges[i].anchor || r.head !== ranges[i].head)) {
      d.setSelection(ranges);
    }
    if (this.onCaretComments) {
      const here = this.commentsAt(ranges[0].head);
      const key = here.map((c) => c.id).join(" ");
      if (key !== this._caretKey) {
        this._caretKey = key;
        this.onCaretComments(here);
      }
    }
  }

  _renderSoon() {
    if (this._renderQueued || this.destroyed) return;
    this._renderQueued = true;
    queueMicrotask(() => {
      this._renderQueued = false;
      this.render();
    });
  }

  /** Draws others' cursors and the comment marks from the document's state. */
  render() {
    const d = this.doc;
    if (this.destroyed || this.held || !d.loaded) return;
    if (this.adapter.busy()) {
      this._renderSoon();
      return;
    }
    if (this.adapter.length() !== d.text.length) return; // a resync is on its way
    const index = this.index;
    const cursors = [];
    for (const c of d.cursors.values()) {
      const user = c.user ?? member(d.members, c.clientId)?.user ?? null;
      cursors.push({
        clientId: c.clientId,
        user,
        name: user?.name || user?.id || "someone",
        color: safeColor(user?.color, user?.id ?? c.clientId),
        ranges: c.ranges.map((r) => ({ anchor: index.toUTF16(r.anchor), head: index.toUTF16(r.head) })),
      });
    }
    const comments = [];
    for (const c of d.comments.list()) {
      if (c.parent || (c.resolved && !this.showResolved)) continue;
      comments.push({ comment: c, from: index.toUTF16(c.range.from), to: index.toUTF16(c.range.to) });
    }
    this.adapter.render({ cursors, comments });
  }

  _report(err) {
    try {
      this.onError(err);
    } catch {
      // the handler's own failure is not ours to report
    }
  }
}
