// editor.js: a collaborative plain-text editor built from a <textarea>
// and two layers that track it exactly.
//
//   .editor            position: relative; grows with the text
//     .editor-mirror   in flow, same font, padding and wrapping as the
//                      textarea, text transparent: paints other users'
//                      selections and comment highlights under the text,
//                      and holds empty marker spans whose offsets give the
//                      pixel position of any character index
//     textarea         absolute over the mirror, transparent background:
//                      the browser's own caret, selection, IME and paste
//     .editor-overlay  absolute on top, pointer-events: none: other users'
//                      carets with name flags
//
// The textarea never scrolls (the mirror sizes it), so mirror and textarea
// wrap lines identically and positions line up; the page scrolls instead.
//
// Edits flow through the Doc (tandem.js): an input event is turned into one
// UTF-16 splice (common prefix and suffix, with the caret deciding between
// equal characters) and submitted; remote changes arrive as splices that
// are applied to the textarea with the local selection moved through them.

import { h, tint, colorOf } from "./util.js";

export class Editor {
  /**
   * @param doc an open tandem.js Doc
   * @param options.label accessible name of the text area
   * @param options.onLayout called after each render with (tops: Map of
   *   comment id → top in px, height) so the margin can follow
   * @param options.onCaretIn called with the comment id the caret is in (or null)
   */
  constructor(doc, { label, onLayout, onCaretIn } = {}) {
    this.doc = doc;
    this.onLayout = onLayout ?? (() => {});
    this.onCaretIn = onCaretIn ?? (() => {});
    this.commentRanges = () => []; // returns [{id, from, to, active, resolved}] in code points
    this.shown = ""; // the text the textarea shows, equal to doc.text between events
    this.scheduled = false;
    this.composing = false;
    this.deferred = []; // remote splices that arrived during a composition

    this.mirror = h("div", { class: "editor-mirror", "aria-hidden": "true" });
    this.textarea = h("textarea", {
      class: "editor-input",
      id: "editor-input",
      "aria-label": label ?? "Document text",
      spellcheck: "false",
      autocapitalize: "off",
      readOnly: true,
      placeholder: "Loading…",
    });
    this.overlay = h("div", { class: "editor-overlay", "aria-hidden": "true" });
    this.root = h("div", { class: "editor", id: "editor", "data-state": "loading" }, this.mirror, this.textarea, this.overlay);

    const ta = this.textarea;
    ta.addEventListener("input", () => this.onInput());
    ta.addEventListener("keydown", (e) => this.onKeyDown(e));
    ta.addEventListener("beforeinput", (e) => {
      if (e.inputType === "historyUndo" || e.inputType === "historyRedo") {
        e.preventDefault();
        if (e.inputType === "historyUndo") this.undo();
        else this.redo();
      }
    });
    // While an IME composes, the textarea is left alone: remote changes
    // wait in deferred and are merged when the composition ends.
    ta.addEventListener("compositionstart", () => (this.composing = true));
    ta.addEventListener("compositionend", () => {
      this.composing = false;
      this.endComposition();
    });
    ta.addEventListener("scroll", () => {
      if (ta.scrollTop !== 0) ta.scrollTop = 0; // the mirror sizes it: it never scrolls
    });
    for (const ev of ["select", "keyup", "mouseup", "focus"]) ta.addEventListener(ev, () => this.syncSelection());
    this.onSelectionChange = () => {
      if (document.activeElement === ta) this.syncSelection();
    };
    document.addEventListener("selectionchange", this.onSelectionChange);

    this.offs = [
      doc.on("change", (e) => this.onChange(e)),
      doc.on("cursors", () => this.schedule()),
      doc.on("cursor", () => this.schedule()),
      doc.on("presence", () => this.schedule()),
      doc.on("open", () => this.load()),
      doc.on("ack", () => this.updateState()),
      doc.on("synced", () => this.updateState()),
    ];
    this.resizeObserver = new ResizeObserver(() => this.schedule());
    this.resizeObserver.observe(this.root);
    if (doc.loaded) this.load();
  }

  /** destroy removes listeners; the caller removes the element. */
  destroy() {
    for (const off of this.offs) off();
    document.removeEventListener("selectionchange", this.onSelectionChange);
    this.resizeObserver.disconnect();
  }

  // load shows the document's text once it is there (from the server or
  // from unsent edits kept in storage).
  load() {
    const ta = this.textarea;
    if (ta.value !== this.doc.text) this.replaceText(this.doc.text, []);
    ta.readOnly = false;
    ta.placeholder = "Start typing…";
    this.root.dataset.state = "ready";
    this.schedule();
  }

  // ----- local edits

  onInput() {
    if (this.composing) return; // sent at compositionend
    const doc = this.doc;
    if (!doc.loaded) return;
    const ta = this.textarea;
    const old = this.shown;
    const now = ta.value;
    if (old === now) return;
    const [start, del, ins] = diffSplice(old, now, ta.selectionEnd);
    try {
      doc.spliceUTF16(start, del, ins);
    } catch (err) {
      // Should not happen; resynchronise the textarea from the document.
      console.error("tandem editor:", err);
      this.replaceText(doc.text, []);
    }
    this.shown = ta.value;
    if (this.shown !== doc.text) this.replaceText(doc.text, []); // e.g. a lone surrogate became U+FFFD
    this.schedule();
    this.syncSelection();
  }

  // endComposition submits what the IME typed. When remote changes came in
  // meanwhile, the typed splice (against the text before them) is moved
  // through them before it is submitted.
  endComposition() {
    const splices = this.deferred;
    this.deferred = [];
    if (splices.length === 0) return this.onInput();
    const ta = this.textarea;
    const [start, del, ins] = diffSplice(this.shown, ta.value, ta.selectionEnd);
    let a = start;
    let b = start + del;
    for (const sp of splices) {
      a = mapIndex(a, sp);
      b = mapIndex(b, sp);
    }
    b = Math.max(a, b);
    if (b > a || ins) this.doc.spliceUTF16(a, b - a, ins);
    this.replaceText(this.doc.text, [], a + ins.length);
    this.schedule();
    this.syncSelection();
  }

  onKeyDown(e) {
    const mod = e.ctrlKey || e.metaKey;
    if (!mod || e.altKey) return;
    const k = e.key.toLowerCase();
    if (k === "z" && !e.shiftKey) {
      e.preventDefault();
      this.undo();
    } else if ((k === "z" && e.shiftKey) || k === "y") {
      e.preventDefault();
      this.redo();
    }
  }

  /** undo undoes this user's last edit (others' edits stay). */
  undo() {
    return this.doc.loaded && this.doc.undo();
  }

  redo() {
    return this.doc.loaded && this.doc.redo();
  }

  // ----- changes from the document

  onChange(e) {
    const ta = this.textarea;
    if (this.composing && e.origin !== "local") {
      this.deferred.push(...e.splices);
      return;
    }
    if (e.origin === "local") {
      if (ta.value !== this.doc.text) this.replaceText(this.doc.text, []);
      this.shown = this.doc.text;
      this.schedule();
      return;
    }
    if (e.origin === "undo" || e.origin === "redo") {
      const last = e.splices[e.splices.length - 1];
      this.replaceText(this.doc.text, e.splices, last ? last.index + last.text.length : null);
      this.syncSelection();
    } else {
      this.replaceText(this.doc.text, e.splices);
    }
    this.schedule();
  }

  // replaceText sets the textarea to text, moving its selection through
  // splices (sequential UTF-16 changes), or to caret when given.
  replaceText(text, splices, caret = null) {
    const ta = this.textarea;
    let s = ta.selectionStart;
    let en = ta.selectionEnd;
    const dir = ta.selectionDirection;
    for (const sp of splices) {
      s = mapIndex(s, sp);
      en = mapIndex(en, sp);
    }
    if (caret != null) s = en = caret;
    const focused = document.activeElement === ta;
    ta.value = text;
    this.shown = text;
    s = Math.min(s, text.length);
    en = Math.min(en, text.length);
    if (focused || caret != null) ta.setSelectionRange(s, en, dir);
    else ta.setSelectionRange(s, en);
  }

  // ----- selection

  /** selection returns the textarea's selection in code points: {anchor, head}. */
  selection() {
    const ta = this.textarea;
    const s = this.doc.fromUTF16(ta.selectionStart);
    const e = this.doc.fromUTF16(ta.selectionEnd);
    return ta.selectionDirection === "backward" ? { anchor: e, head: s } : { anchor: s, head: e };
  }

  syncSelection() {
    const doc = this.doc;
    if (!doc.loaded || this.textarea.value !== doc.text) return;
    const sel = this.selection();
    // The document moves its copy of our selection through remote edits as
    // the textarea does, so this sends only when the user moved it.
    const cur = doc.selection?.[0];
    if (!cur || cur.anchor !== sel.anchor || cur.head !== sel.head) doc.setSelection([sel]);
    const at = Math.min(sel.anchor, sel.head);
    const hit = this.commentRanges().find((c) => !c.resolved && c.from <= at && at <= c.to && c.from < c.to);
    this.onCaretIn(hit ? hit.id : null);
  }

  /**
   * setComments gives a function returning the comment ranges to
   * highlight, read at every render (ranges move with each edit):
   * [{id, from, to, active, resolved}] in code points.
   */
  setComments(source) {
    this.commentRanges = source;
    this.schedule();
  }

  // ----- rendering

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.render();
    });
  }

  // render rebuilds the mirror (highlights and markers) and the carets.
  render() {
    const doc = this.doc;
    const text = this.shown;
    const u = (cp) => (cp <= 0 ? 0 : doc.text === text ? doc.toUTF16(cp) : Math.min(cp, text.length));
    const sels = []; // {from, to, color}
    const carets = []; // {index, user, clientId}
    for (const c of doc.cursors.values()) {
      const user = c.user ?? doc.members.get(c.clientId)?.user ?? { id: c.clientId, name: "someone" };
      const color = user.color ?? colorOf(user.id);
      for (const r of c.ranges) {
        const a = u(r.anchor);
        const hd = u(r.head);
        if (a !== hd) sels.push({ from: Math.min(a, hd), to: Math.max(a, hd), color });
        carets.push({ index: hd, user, color, clientId: c.clientId });
      }
    }
    const marks = this.commentRanges()
      .filter((c) => !c.resolved)
      .map((c) => ({ id: c.id, from: u(c.from), to: u(c.to), active: c.active }));

    const points = new Set([0, text.length]);
    const markerAt = new Set();
    for (const s of sels) points.add(s.from).add(s.to);
    for (const m of marks) {
      points.add(m.from).add(m.to);
      markerAt.add(m.from);
    }
    for (const c of carets) {
      points.add(c.index);
      markerAt.add(c.index);
    }
    const sorted = [...points].filter((p) => p >= 0 && p <= text.length).sort((a, b) => a - b);

    const frag = document.createDocumentFragment();
    const markers = new Map();
    for (let i = 0; i < sorted.length; i++) {
      const p = sorted[i];
      if (markerAt.has(p)) {
        const m = h("span", { class: "marker" });
        markers.set(p, m);
        frag.append(m);
      }
      const next = sorted[i + 1];
      if (next === undefined || next === p) continue;
      const seg = text.slice(p, next);
      const sel = sels.find((s) => s.from <= p && next <= s.to);
      const cms = marks.filter((m) => m.from <= p && next <= m.to);
      if (!sel && cms.length === 0) {
        frag.append(seg);
        continue;
      }
      const span = h("span", { class: cms.length ? "hl comment-hl" : "hl" }, seg);
      if (cms.length) {
        span.dataset.comments = cms.map((m) => m.id).join(" ");
        if (cms.some((m) => m.active)) span.classList.add("active");
      }
      if (sel) span.style.backgroundColor = tint(sel.color, 0.28);
      frag.append(span);
    }
    frag.append("\u200b\n\u200b"); // a trailing newline still gets its line, plus room to grow
    this.mirror.replaceChildren(frag);

    // Carets and their name flags.
    const lh = parseFloat(getComputedStyle(this.mirror).lineHeight) || 24;
    const pos = (p) => {
      const m = markers.get(p);
      if (!m) return null;
      return { top: m.offsetTop + m.offsetHeight / 2 - lh / 2, left: m.offsetLeft };
    };
    const layer = document.createDocumentFragment();
    for (const c of carets) {
      const at = pos(c.index);
      if (!at) continue;
      layer.append(
        h(
          "div",
          {
            class: "remote-caret",
            style: { left: `${at.left}px`, top: `${at.top}px`, height: `${lh}px`, "--user": c.color },
            "data-user": c.user.id,
            "data-client": c.clientId,
            "data-index": String(c.index),
          },
          h("span", { class: "remote-flag" }, c.user.name ?? c.user.id),
        ),
      );
    }
    this.overlay.replaceChildren(layer);
    if (this.textarea.scrollTop !== 0) this.textarea.scrollTop = 0;

    const tops = new Map();
    for (const m of marks) {
      const at = pos(m.from);
      if (at) tops.set(m.id, at.top);
    }
    this.updateState();
    this.onLayout(tops, this.root.offsetHeight);
  }

  // updateState exposes the server version and whether edits are pending
  // as data attributes (for styles and tests).
  updateState() {
    this.root.dataset.version = String(this.doc.version);
    this.root.dataset.pending = String(this.doc.pending);
  }
}

// mapIndex moves a UTF-16 index through one splice. An index at the splice
// stays in front of inserted text (another user's insert at our caret).
export function mapIndex(p, sp) {
  if (p <= sp.index) return p;
  if (p >= sp.index + sp.deleteCount) return p - sp.deleteCount + sp.text.length;
  return sp.index;
}

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

/**
 * diffSplice finds the one splice [index, deleteCount, text] (UTF-16) that
 * turns old into now. caret is the selection end after the edit: when the
 * change is ambiguous (typing "b" after "b"), the splice ends at the caret,
 * which is where the user typed. Surrogate pairs are never split.
 */
export function diffSplice(old, now, caret) {
  let start = 0;
  const min = Math.min(old.length, now.length);
  while (start < min && old.charCodeAt(start) === now.charCodeAt(start)) start++;
  let eo = old.length;
  let en = now.length;
  while (eo > start && en > start && old.charCodeAt(eo - 1) === now.charCodeAt(en - 1)) {
    eo--;
    en--;
  }
  const ins = en - start;
  const del = eo - start;
  // Pure insert or delete: slide it to end (insert) or start (delete) at
  // the caret when the text agrees.
  if (del === 0 && ins > 0 && caret - ins >= 0 && caret - ins < start) {
    const s = caret - ins;
    if (old.slice(s) === now.slice(caret) && old.slice(0, s) === now.slice(0, s)) return fix(old, now, s, s, caret);
  }
  if (ins === 0 && del > 0 && caret < start && caret >= 0) {
    if (old.slice(0, caret) === now.slice(0, caret) && old.slice(caret + del) === now.slice(caret)) {
      return fix(old, now, caret, caret + del, caret);
    }
  }
  return fix(old, now, start, eo, en);
}

// fix widens a splice so that it does not cut a surrogate pair.
function fix(old, now, start, eo, en) {
  while (start > 0 && isLow(old.charCodeAt(start)) && isHigh(old.charCodeAt(start - 1))) start--;
  while (start > 0 && isLow(now.charCodeAt(start)) && isHigh(now.charCodeAt(start - 1))) start--;
  while (eo < old.length && isLow(old.charCodeAt(eo)) && eo > 0 && isHigh(old.charCodeAt(eo - 1))) {
    eo++;
    en++;
  }
  while (en < now.length && isLow(now.charCodeAt(en)) && en > 0 && isHigh(now.charCodeAt(en - 1))) {
    eo++;
    en++;
  }
  return [start, eo - start, now.slice(start, en)];
}
