// editor.js: a collaborative plain-text editor on a contenteditable
// element holding one block per line, so that an edit re-lays out only the
// lines it touches, whatever the document's length (a <textarea> lays out
// all of its text on every change: seconds per key in a 1 MB document).
//
//   .editor             position: relative
//     .editor-content   contenteditable; one div.ln per line of the text
//                       (an empty line holds a <br>)
//     .editor-overlay   absolute on top, pointer-events: none: other users'
//                       carets with name flags
//
// Other users' selections and comment highlights are CSS custom
// highlights (::highlight), which paint ranges without touching the DOM.
//
// The editor never lets the browser change the lines itself: every
// beforeinput (typing, Enter, deleting, pasting, dropping) is turned into
// a UTF-16 splice of the text and submitted to the Doc (tandem.js); every
// change of the Doc, local or remote, reaches the lines as splices, and the
// caret is put back (moved through remote changes, after local ones). An
// input method composes in the DOM, which is then read back at
// compositionend; remote changes wait meanwhile.
//
// For the app, the tests and the comment margin, the content element also
// answers as a textarea would: value, selectionStart, selectionEnd,
// selectionDirection, setSelectionRange and readOnly.

import { h, tint, colorOf } from "./util.js";

const highlights = globalThis.CSS?.highlights ?? null;

export class Editor {
  /**
   * @param doc an open tandem.js Doc
   * @param options.label accessible name of the text
   * @param options.onLayout called after each render with (tops: Map of
   *   comment id → top in px, height) so the margin can follow
   * @param options.onCaretIn called with the comment id the caret is in (or null)
   */
  constructor(doc, { label, onLayout, onCaretIn } = {}) {
    this.doc = doc;
    this.onLayout = onLayout ?? (() => {});
    this.onCaretIn = onCaretIn ?? (() => {});
    this.commentRanges = () => []; // returns [{id, from, to, active, resolved}] in code points
    this.shown = ""; // the text the lines show, equal to doc.text between events
    this.starts = [0]; // UTF-16 index in shown where each line starts
    this.lines = []; // the div.ln of each line
    this.scheduled = false;
    this.composing = false;
    this.deferred = []; // remote splices waiting for a composition to end
    this.readOnly = true;
    this.marks = []; // what render painted: [{kind: "comment"|"selection", id, from, to, text}] (UTF-16)
    this.userStyles = new Map(); // colour → highlight name

    this.content = h("div", {
      class: "editor-content",
      id: "editor-input",
      role: "textbox",
      "aria-multiline": "true",
      "aria-label": label ?? "Document text",
      spellcheck: "false",
      autocapitalize: "off",
      translate: "no",
      "data-placeholder": "Loading…",
    });
    this.overlay = h("div", { class: "editor-overlay", "aria-hidden": "true" });
    this.root = h("div", { class: "editor", id: "editor", "data-state": "loading" }, this.content, this.overlay);
    this.textarea = this.content; // the name the app uses
    this.shim();
    this.setLines("");

    const el = this.content;
    el.addEventListener("beforeinput", (e) => this.onBeforeInput(e));
    el.addEventListener("input", (e) => this.onInput(e));
    el.addEventListener("keydown", (e) => this.onKeyDown(e));
    el.addEventListener("copy", (e) => this.onCopy(e, false));
    el.addEventListener("cut", (e) => this.onCopy(e, true));
    el.addEventListener("paste", (e) => this.onPaste(e));
    el.addEventListener("compositionstart", () => (this.composing = true));
    el.addEventListener("compositionend", () => {
      this.composing = false;
      this.endComposition();
    });
    for (const ev of ["keyup", "mouseup", "focus"]) el.addEventListener(ev, () => this.syncSelection());
    this.onSelectionChange = () => {
      if (this.root.contains(document.activeElement)) this.syncSelection();
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

  // shim gives the content element a textarea's value and selection API.
  shim() {
    const ed = this;
    Object.defineProperties(this.content, {
      value: { get: () => (ed.composing ? ed.domText() : ed.shown), configurable: true },
      selectionStart: { get: () => ed.domSelection().start, configurable: true },
      selectionEnd: { get: () => ed.domSelection().end, configurable: true },
      selectionDirection: { get: () => (ed.domSelection().backward ? "backward" : "forward"), configurable: true },
      setSelectionRange: { value: (a, b, dir) => ed.select(dir === "backward" ? b : a, dir === "backward" ? a : b), configurable: true },
      readOnly: {
        get: () => ed.readOnly,
        set: (v) => {
          ed.readOnly = !!v;
          ed.content.contentEditable = v ? "false" : plaintextOnly();
          ed.content.setAttribute("aria-readonly", String(!!v));
        },
        configurable: true,
      },
    });
  }

  /** destroy removes listeners; the caller removes the element. */
  destroy() {
    for (const off of this.offs) off();
    document.removeEventListener("selectionchange", this.onSelectionChange);
    this.resizeObserver.disconnect();
    if (highlights) for (const name of [...highlights.keys()]) if (name.startsWith("tandem-")) highlights.delete(name);
  }

  // load shows the document's text once it is there (from the server or
  // from unsent edits kept in storage).
  load() {
    if (this.shown !== this.doc.text) this.setLines(this.doc.text);
    this.textarea.readOnly = false;
    this.content.dataset.placeholder = "Start typing…";
    this.root.dataset.state = "ready";
    this.schedule();
  }

  // ----- lines

  // setLines rebuilds every line from text.
  setLines(text) {
    this.shown = text;
    const parts = text.split("\n");
    this.starts = new Array(parts.length);
    let at = 0;
    for (let i = 0; i < parts.length; i++) {
      this.starts[i] = at;
      at += parts[i].length + 1;
    }
    this.lines = parts.map(makeLine);
    this.content.replaceChildren(...this.lines);
    this.content.toggleAttribute("data-empty", text === "");
  }

  // lineOf returns the line holding UTF-16 index i (the last line whose
  // start is at or before i).
  lineOf(i) {
    const s = this.starts;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  lineText(n) {
    const end = n + 1 < this.starts.length ? this.starts[n + 1] - 1 : this.shown.length;
    return this.shown.slice(this.starts[n], end);
  }

  // splice changes the shown text and only the lines it touches: deletes
  // count UTF-16 units at index and inserts text.
  splice(index, count, text) {
    const la = this.lineOf(index);
    const lb = this.lineOf(index + count);
    const a = this.lineText(la);
    const b = this.lineText(lb);
    const merged = a.slice(0, index - this.starts[la]) + text + b.slice(index + count - this.starts[lb]);
    const parts = merged.split("\n");
    this.shown = this.shown.slice(0, index) + text + this.shown.slice(index + count);
    // Reuse line la's element; replace the others.
    setLine(this.lines[la], parts[0]);
    const added = parts.slice(1).map(makeLine);
    for (let k = la + 1; k <= lb; k++) this.lines[k].remove();
    if (added.length) this.lines[la].after(...added);
    this.lines.splice(la + 1, lb - la, ...added);
    const starts = new Array(parts.length);
    let at = this.starts[la];
    for (let k = 0; k < parts.length; k++) {
      starts[k] = at;
      at += parts[k].length + 1;
    }
    const d = text.length - count;
    const rest = this.starts.slice(lb + 1);
    for (let k = 0; k < rest.length; k++) rest[k] += d;
    this.starts.length = la;
    for (const x of starts) this.starts.push(x);
    for (const x of rest) this.starts.push(x);
    this.content.toggleAttribute("data-empty", this.shown === "");
  }

  // domText reads the text the lines show (an input method may have
  // changed them).
  domText() {
    return this.lines.map((l) => l.textContent).join("\n");
  }

  // ----- positions: UTF-16 index ↔ DOM point

  // point returns the DOM point [node, offset] of UTF-16 index i.
  point(i) {
    i = Math.max(0, Math.min(i, this.shown.length));
    const n = this.lineOf(i);
    const el = this.lines[n];
    const off = i - this.starts[n];
    const t = el.firstChild;
    if (t && t.nodeType === 3) return [t, Math.min(off, t.length)];
    return [el, 0];
  }

  // index returns the UTF-16 index of a DOM point, or null outside the text.
  index(node, offset) {
    const c = this.content;
    if (node === c) {
      if (offset >= this.lines.length) return this.shown.length;
      return this.starts[offset];
    }
    if (!c.contains(node)) return null;
    let el = node.nodeType === 3 ? node.parentNode : node;
    while (el && el.parentNode !== c) el = el.parentNode;
    const n = this.lines.indexOf(el);
    if (n < 0) return null;
    const len = this.lineText(n).length;
    if (node.nodeType === 3) {
      // The line's own text node, or one an input method added.
      let off = 0;
      for (let ch = el.firstChild; ch && ch !== node; ch = ch.nextSibling) off += ch.textContent.length;
      return this.starts[n] + Math.min(off + offset, len);
    }
    return this.starts[n] + (node === el && offset === 0 ? 0 : len);
  }

  // domCaret returns the caret's UTF-16 index in domText (the lines as the
  // browser left them), or null when it is not in the text.
  domCaret() {
    const sel = document.getSelection();
    if (!sel || sel.rangeCount === 0) return null;
    const node = sel.focusNode;
    let el = node?.nodeType === 3 ? node.parentNode : node;
    while (el && el.parentNode !== this.content) el = el.parentNode;
    const n = this.lines.indexOf(el);
    if (n < 0) return null;
    let at = 0;
    for (let k = 0; k < n; k++) at += this.lines[k].textContent.length + 1;
    if (node.nodeType !== 3) return at + (sel.focusOffset === 0 ? 0 : el.textContent.length);
    for (let ch = el.firstChild; ch && ch !== node; ch = ch.nextSibling) at += ch.textContent.length;
    return at + sel.focusOffset;
  }

  // domSelection returns the selection in UTF-16 indices.
  domSelection() {
    const sel = document.getSelection();
    if (!sel || sel.rangeCount === 0) return { start: 0, end: 0, anchor: 0, head: 0, backward: false, inside: false };
    const anchor = this.index(sel.anchorNode, sel.anchorOffset);
    const head = this.index(sel.focusNode, sel.focusOffset);
    if (anchor === null || head === null) return { start: 0, end: 0, anchor: 0, head: 0, backward: false, inside: false };
    return { start: Math.min(anchor, head), end: Math.max(anchor, head), anchor, head, backward: head < anchor, inside: true };
  }

  // select sets the selection (UTF-16 indices) and focuses the text.
  select(anchor, head) {
    const sel = document.getSelection();
    const [an, ao] = this.point(anchor);
    const [hn, ho] = this.point(head);
    if (document.activeElement !== this.content) this.content.focus({ preventScroll: true });
    sel.setBaseAndExtent(an, ao, hn, ho);
  }

  // ----- local edits

  onBeforeInput(e) {
    const t = e.inputType;
    if (t === "historyUndo" || t === "historyRedo") {
      e.preventDefault();
      if (t === "historyUndo") this.undo();
      else this.redo();
      return;
    }
    if (t === "insertCompositionText" || this.composing) return; // read back at compositionend
    e.preventDefault();
    if (this.readOnly || !this.doc.loaded) return;
    const sel = this.domSelection();
    let from = sel.start;
    let to = sel.end;
    let text = "";
    const targets = e.getTargetRanges?.() ?? [];
    const target = () => {
      if (targets.length === 0) return false;
      const r = targets[0];
      const a = this.index(r.startContainer, r.startOffset);
      const b = this.index(r.endContainer, r.endOffset);
      if (a === null || b === null) return false;
      [from, to] = [Math.min(a, b), Math.max(a, b)];
      return true;
    };
    if (t.startsWith("delete")) {
      if (!target() || (from === to && sel.start === sel.end)) {
        // No target range: a character (both halves of a pair).
        if (from === to) {
          const s = this.shown;
          if (t.endsWith("Backward") && from > 0) from -= from > 1 && isLow(s.charCodeAt(from - 1)) && isHigh(s.charCodeAt(from - 2)) ? 2 : 1;
          else if (!t.endsWith("Backward") && to < s.length) to += isHigh(s.charCodeAt(to)) && isLow(s.charCodeAt(to + 1)) ? 2 : 1;
        }
      }
    } else if (t === "insertLineBreak" || t === "insertParagraph") text = "\n";
    else if (t === "insertText" || t === "insertReplacementText" || t === "insertFromPaste" || t === "insertFromDrop" || t === "insertFromYank") {
      text = e.data ?? e.dataTransfer?.getData("text/plain") ?? "";
      if (t === "insertReplacementText" || t === "insertFromDrop") target();
    } else return; // formatting and the like: plain text has none
    this.edit(from, to, text.replace(/\r\n?/g, "\n"));
  }

  // edit replaces [from, to) (UTF-16) with text as a local edit; the change
  // comes back through onChange, which puts the caret after it.
  edit(from, to, text) {
    if (from === to && text === "") return;
    try {
      this.doc.spliceUTF16(from, to - from, text);
    } catch (err) {
      console.error("tandem editor:", err);
      this.setLines(this.doc.text);
    }
  }

  // onInput catches a change the browser made to the lines without a
  // cancelable beforeinput (some input methods): it is read back.
  onInput() {
    if (this.composing) return;
    if (this.domText() !== this.shown) this.readBack([]);
  }

  // endComposition submits what the input method typed. When remote
  // changes came in meanwhile, the typed splice (against the text before
  // them) is moved through them before it is submitted.
  endComposition() {
    const splices = this.deferred;
    this.deferred = [];
    this.readBack(splices);
  }

  // readBack turns what the browser wrote into the lines into a splice of
  // the shown text, puts the lines back as they were, applies the remote
  // splices that waited, and submits the splice moved through them.
  readBack(splices) {
    const now = this.domText();
    const old = this.shown;
    const caretIndex = this.domCaret() ?? now.length;
    this.setLines(old);
    for (const sp of splices) this.splice(sp.index, sp.deleteCount, sp.text);
    if (now === old) {
      this.schedule();
      return;
    }
    const [start, del, ins] = diffSplice(old, now, caretIndex);
    let a = start;
    let b = start + del;
    for (const sp of splices) {
      a = mapIndex(a, sp);
      b = mapIndex(b, sp);
    }
    this.edit(a, Math.max(a, b), ins);
    this.schedule();
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

  // onCopy puts the selected text on the clipboard exactly (line breaks
  // as \n); a cut then deletes it as an edit.
  onCopy(e, cut) {
    const sel = this.domSelection();
    if (!sel.inside || sel.start === sel.end) return;
    e.preventDefault();
    e.clipboardData.setData("text/plain", this.shown.slice(sel.start, sel.end));
    if (cut && !this.readOnly) this.edit(sel.start, sel.end, "");
  }

  onPaste(e) {
    e.preventDefault();
    if (this.readOnly || !this.doc.loaded) return;
    const text = e.clipboardData?.getData("text/plain") ?? "";
    const sel = this.domSelection();
    this.edit(sel.start, sel.end, text.replace(/\r\n?/g, "\n"));
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
    if (this.composing && e.origin !== "local") {
      this.deferred.push(...e.splices);
      return;
    }
    const local = e.origin === "local" || e.origin === "undo" || e.origin === "redo";
    const focused = document.activeElement === this.content;
    const sel = this.domSelection();
    for (const sp of e.splices) this.splice(sp.index, sp.deleteCount, sp.text);
    if (local) {
      const last = e.splices[e.splices.length - 1];
      if (last) this.select(last.index + last.text.length, last.index + last.text.length);
      this.syncSelection();
    } else if (focused && sel.inside) {
      // Someone else's change: the caret stays on its text.
      let { anchor, head } = sel;
      for (const sp of e.splices) {
        anchor = mapIndex(anchor, sp);
        head = mapIndex(head, sp);
      }
      this.select(anchor, head);
    }
    // Should not happen; a length check, since comparing 1 MB strings per
    // key costs more than the rest of the edit.
    if (this.shown.length !== this.doc.text.length) this.setLines(this.doc.text);
    this.schedule();
  }

  // ----- selection

  /** selection returns the selection in code points: {anchor, head}. */
  selection() {
    const s = this.domSelection();
    return { anchor: this.doc.fromUTF16(s.anchor), head: this.doc.fromUTF16(s.head) };
  }

  syncSelection() {
    const doc = this.doc;
    if (!doc.loaded || this.composing || this.shown.length !== doc.text.length) return;
    const dom = this.domSelection();
    if (!dom.inside) return;
    const sel = { anchor: doc.fromUTF16(dom.anchor), head: doc.fromUTF16(dom.head) };
    // The document moves its copy of our selection through remote edits as
    // the lines do, so this sends only when the user moved it.
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

  // schedule renders before the next frame: changes in between cost one
  // render and one layout.
  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      if (!this.scheduled) return;
      this.scheduled = false;
      this.render();
    };
    requestAnimationFrame(run);
    setTimeout(run, 200); // a hidden page has no frames
  }

  // range returns a StaticRange over UTF-16 [from, to).
  range(from, to) {
    const [sn, so] = this.point(from);
    const [en, eo] = this.point(to);
    return new StaticRange({ startContainer: sn, startOffset: so, endContainer: en, endOffset: eo });
  }

  // highlightName returns the ::highlight name painting a colour, making
  // its style rule the first time.
  highlightName(color) {
    let name = this.userStyles.get(color);
    if (!name) {
      name = `tandem-sel-${this.userStyles.size}`;
      this.userStyles.set(color, name);
      const style = document.createElement("style");
      style.textContent = `::highlight(${name}) { background-color: ${tint(color, 0.28)}; }`;
      document.head.append(style);
    }
    return name;
  }

  // render paints the others' selections, the comments and the carets:
  // work in proportion to them, not to the text.
  render() {
    const doc = this.doc;
    const text = this.shown;
    const u = (cp) => (cp <= 0 ? 0 : doc.text.length === text.length ? doc.toUTF16(cp) : Math.min(cp, text.length));
    const marks = [];
    const carets = []; // {index, user, color, clientId}
    for (const c of doc.cursors.values()) {
      const user = c.user ?? doc.members.get(c.clientId)?.user ?? { id: c.clientId, name: "someone" };
      const color = user.color ?? colorOf(user.id);
      for (const r of c.ranges) {
        const a = u(r.anchor);
        const hd = u(r.head);
        if (a !== hd) marks.push({ kind: "selection", id: c.clientId, color, from: Math.min(a, hd), to: Math.max(a, hd) });
        carets.push({ index: hd, user, color, clientId: c.clientId });
      }
    }
    const comments = this.commentRanges()
      .filter((c) => !c.resolved)
      .map((c) => ({ kind: "comment", id: c.id, from: u(c.from), to: u(c.to), active: c.active }));
    marks.push(...comments);
    for (const m of marks) m.text = text.slice(m.from, m.to);
    this.marks = marks;

    if (highlights) {
      const groups = new Map(); // highlight name → ranges
      const add = (name, r) => (groups.get(name) ?? groups.set(name, []).get(name)).push(r);
      for (const m of marks) {
        if (m.from === m.to) continue;
        const r = this.range(m.from, m.to);
        if (m.kind === "selection") add(this.highlightName(m.color), r);
        else add(m.active ? "tandem-comment-active" : "tandem-comment", r);
      }
      for (const name of [...highlights.keys()]) if (name.startsWith("tandem-") && !groups.has(name)) highlights.delete(name);
      for (const [name, ranges] of groups) highlights.set(name, new Highlight(...ranges));
    }

    // Carets and their name flags.
    const box = this.root.getBoundingClientRect();
    const lh = parseFloat(getComputedStyle(this.content).lineHeight) || 24;
    const pos = (i) => {
      const rect = this.caretRect(i);
      if (!rect) return null;
      return { top: rect.top - box.top + rect.height / 2 - lh / 2, left: rect.left - box.left };
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

    const tops = new Map();
    for (const m of comments) {
      const at = pos(m.from);
      if (at) tops.set(m.id, at.top);
    }
    this.updateState();
    this.onLayout(tops, this.root.offsetHeight);
  }

  // caretRect returns the client rectangle of a caret at UTF-16 index i.
  caretRect(i) {
    const [node, off] = this.point(i);
    const r = document.createRange();
    r.setStart(node, off);
    r.collapse(true);
    let rect = r.getClientRects()[0];
    if (!rect) {
      // An empty line: its box.
      const el = node.nodeType === 3 ? node.parentNode : node;
      const b = el.getBoundingClientRect();
      const pad = parseFloat(getComputedStyle(el).paddingLeft) || 0;
      rect = { left: b.left + pad, top: b.top, height: b.height };
    }
    return rect;
  }

  // updateState exposes the server version and whether edits are pending
  // as data attributes (for styles and tests).
  updateState() {
    this.root.dataset.version = String(this.doc.version);
    this.root.dataset.pending = String(this.doc.pending);
  }
}

// makeLine returns the element of one line of text.
function makeLine(text) {
  const el = document.createElement("div");
  el.className = "ln";
  setLine(el, text);
  return el;
}

function setLine(el, text) {
  const t = el.firstChild;
  if (text === "") {
    if (!(t && t.nodeName === "BR" && !t.nextSibling)) el.replaceChildren(document.createElement("br"));
  } else if (t && t.nodeType === 3 && !t.nextSibling) {
    if (t.data !== text) t.data = text;
  } else el.replaceChildren(document.createTextNode(text));
}

// plaintextOnly is the contentEditable value for plain text where the
// browser knows it.
function plaintextOnly() {
  const d = document.createElement("div");
  d.contentEditable = "plaintext-only";
  return d.contentEditable === "plaintext-only" ? "plaintext-only" : "true";
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
