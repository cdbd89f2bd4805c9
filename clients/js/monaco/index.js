// monaco/index.js (@tandemhq/client/monaco): the Monaco binding of a Tandem document.
//
//   import { bindMonaco } from "@tandemhq/client/monaco";
//   const editor = monaco.editor.create(parent, { value: "" });
//   const binding = bindMonaco(client.openDoc("notes-1", { undoGroupMs: 500 }), editor);
//
// Local model changes (one content event, several cursors included) become
// one op each; the document's other changes are applied with
// model.applyEdits, outside Monaco's undo stack; other users' carets,
// selections and the comments are decorations (Monaco moves them with the
// text between updates); the local selection is sent, coalesced; during an
// IME composition both directions wait (../editor/sync.js).
//
// Undo: Monaco's undo stack keeps each edit by offset and does not move it
// over edits made with applyEdits, so after a collaborator's edit its undo
// would take back the wrong text. The binding therefore routes the model's
// undo and redo (Ctrl/Cmd+Z, the context menu, editor.trigger(.., "undo"))
// to the document's own undo, which takes back only this user's edits,
// moved over everyone else's; Monaco's stack is left unused.
//
// Line breaks: Monaco's model splits lines at "\r", "\n" and "\r\n" and
// keeps one kind of line break. The binding sets the model's to "\n"; a "\r"
// of the document is shown as "␍" (U+240D, also one UTF-16 unit, so
// positions stay the same) and a "␍" typed into Monaco is sent as "\r".
//
// monaco-editor is a peer dependency: the app brings its own copy and the
// binding uses only the editor and model objects it is given.

import { EditorSync } from "../editor/sync.js";

const CR_SHOWN = "\u240d";
const toModel = (s) => (s.includes("\r") ? s.replaceAll("\r", CR_SHOWN) : s);
const fromModel = (s) => (s.includes(CR_SHOWN) ? s.replaceAll(CR_SHOWN, "\r") : s);

const EOL_LF = 0; // monaco.editor.EndOfLineSequence.LF
const PREFER_LF = 1; // monaco.editor.EndOfLinePreference.LF
const NEVER_GROWS = 1; // monaco.editor.TrackedRangeStickiness.NeverGrowsWhenTypingAtEdges

let styleSeq = 0;

const BASE_CSS = `
.tandem-caret { position: relative; border-left: 2px solid; margin-left: -1px; margin-right: -1px; pointer-events: none; }
.tandem-caret::after { position: absolute; bottom: 100%; left: -2px; padding: 0 4px; border-radius: 3px 3px 3px 0; color: white;
  font: 11px/15px system-ui, sans-serif; white-space: nowrap; z-index: 10; }
.tandem-comment { background-color: rgba(250, 204, 21, 0.35); border-bottom: 2px solid rgba(202, 138, 4, 0.8); cursor: pointer; }
`;

// cssString quotes s as a CSS string.
function cssString(s) {
  return `"${String(s).replace(/[\\"\n\r\f]/g, (c) => `\\${c.charCodeAt(0).toString(16)} `)}"`;
}

// toParallel turns sequential splices (each in the text the previous left)
// into edits on the first text, when they go left to right; else null.
function toParallel(splices) {
  const out = [];
  let shift = 0;
  let end = 0;
  for (const s of splices) {
    const from = s.index - shift;
    if (from < end) return null;
    out.push({ from, to: from + s.deleteCount, insert: s.text });
    end = from + s.deleteCount;
    shift += s.text.length - s.deleteCount;
  }
  return out;
}

// mapThrough moves a UTF-16 position through a splice as someone else's
// edit: text inserted at the position stays after it.
function mapThrough(p, s) {
  if (p <= s.index) return p;
  if (p >= s.index + s.deleteCount) return p + s.text.length - s.deleteCount;
  return s.index;
}

/**
 * MonacoBinding binds one Monaco code editor (and its model) to one Doc.
 * Positions in its methods are Monaco's UTF-16 offsets unless named code
 * points.
 */
class MonacoBinding {
  constructor(doc, editor, options) {
    const model = editor.getModel();
    if (!model) throw new Error("bindMonaco: the editor has no model");
    this.doc = doc;
    this.editor = editor;
    this.model = model;
    this.options = options;
    this.composingNow = false;
    this.carets = []; // [{clientId, name, color, n}] of the caret decorations, by index
    this.classes = new Map(); // client id → {n, css}
    this.style = document.createElement("style");
    this.style.dataset.tandem = `monaco-${++styleSeq}`;
    document.head.append(this.style);
    this.decorations = editor.createDecorationsCollection();
    model.setEOL(EOL_LF);
    editor.updateOptions({ unusualLineTerminators: "off" });
    this.sync = new EditorSync(doc, this, options);

    this.disposables = [
      model.onDidChangeContent((e) => this._onContent(e)),
      editor.onDidChangeCursorSelection(() => this.sync.selectionChanged()),
      editor.onDidCompositionStart(() => {
        this.composingNow = true;
      }),
      editor.onDidCompositionEnd(() => {
        this.composingNow = false;
        this.sync.compositionEnd();
      }),
      editor.onMouseDown((e) => this._onMouseDown(e)),
    ];
    // Undo and redo go to the document (see the top of this file).
    this.modelUndo = Object.getOwnPropertyDescriptor(model, "undo");
    this.modelRedo = Object.getOwnPropertyDescriptor(model, "redo");
    // A truthy result: Monaco's undo command tries its next handler (the
    // browser's own undo) after one that returns nothing.
    model.undo = () => {
      doc.undo();
      return Promise.resolve();
    };
    model.redo = () => {
      doc.redo();
      return Promise.resolve();
    };
    this.sync.start();
  }

  // --- EditorSync's adapter

  text() {
    return fromModel(this.model.getValue(PREFER_LF));
  }
  length() {
    return this.model.getValueLength();
  }
  _range(from, to) {
    const a = this.model.getPositionAt(from);
    const b = from === to ? a : this.model.getPositionAt(to);
    return { startLineNumber: a.lineNumber, startColumn: a.column, endLineNumber: b.lineNumber, endColumn: b.column };
  }
  apply(splices) {
    // The local selection stays where it was in the text around it (text
    // inserted at a caret goes after it, as the document moves it).
    let sels = this.selection();
    for (const s of splices) sels = sels.map((r) => ({ anchor: mapThrough(r.anchor, s), head: mapThrough(r.head, s) }));
    const parallel = toParallel(splices);
    if (parallel) {
      this.model.applyEdits(parallel.map((e) => ({ range: this._range(e.from, e.to), text: toModel(e.insert) })));
    } else {
      for (const s of splices) this.model.applyEdits([{ range: this._range(s.index, s.index + s.deleteCount), text: toModel(s.text) }]);
    }
    if (sels.length > 0) {
      this.editor.setSelections(
        sels.map((r) => {
          const a = this.model.getPositionAt(r.anchor);
          const h = this.model.getPositionAt(r.head);
          return { selectionStartLineNumber: a.lineNumber, selectionStartColumn: a.column, positionLineNumber: h.lineNumber, positionColumn: h.column };
        }),
        "tandem",
      );
    }
  }
  selection() {
    const sels = this.editor.getSelections() ?? [];
    return sels.map((s) => ({
      anchor: this.model.getOffsetAt({ lineNumber: s.selectionStartLineNumber, column: s.selectionStartColumn }),
      head: this.model.getOffsetAt({ lineNumber: s.positionLineNumber, column: s.positionColumn }),
    }));
  }
  composing() {
    return this.composingNow;
  }
  busy() {
    return false;
  }
  setEditable(on) {
    this.editor.updateOptions({ readOnly: !on });
  }
  _classFor(c) {
    let k = this.classes.get(c.clientId);
    if (!k) {
      k = { n: this.classes.size + 1, css: "" };
      this.classes.set(c.clientId, k);
    }
    const css =
      `.tandem-sel-${k.n} { background-color: color-mix(in srgb, ${c.color} 25%, transparent); }\n` +
      `.tandem-caret-${k.n} { border-left-color: ${c.color}; }\n` +
      `.tandem-caret-${k.n}::after { content: ${cssString(c.name)}; background-color: ${c.color}; }\n`;
    if (css !== k.css) {
      k.css = css;
      this.style.textContent = BASE_CSS + [...this.classes.values()].map((x) => x.css).join("");
    }
    return k.n;
  }
  render({ cursors, comments }) {
    const decos = [];
    const carets = [];
    for (const c of cursors) {
      const n = this._classFor(c);
      for (const r of c.ranges) {
        if (r.anchor !== r.head) {
          decos.push({ range: this._range(Math.min(r.anchor, r.head), Math.max(r.anchor, r.head)), options: { className: `tandem-sel-${n}`, stickiness: NEVER_GROWS } });
        }
        carets.push({ index: decos.length, clientId: c.clientId, name: c.name, color: c.color, n });
        decos.push({
          range: this._range(r.head, r.head),
          options: { beforeContentClassName: `tandem-caret tandem-caret-${n}`, stickiness: NEVER_GROWS, hoverMessage: { value: c.name } },
        });
      }
    }
    for (const { comment, from, to } of comments) {
      if (from >= to) continue;
      decos.push({
        range: this._range(from, to),
        options: { inlineClassName: `tandem-comment tandem-comment-${comment.id}`, stickiness: NEVER_GROWS, hoverMessage: { value: comment.text } },
      });
    }
    this.carets = carets;
    this.decorations.set(decos);
  }

  // --- the editor's side

  _onContent(e) {
    if (this.sync.applying) return;
    if (e.isFlush) {
      this.sync.localText(); // setValue: the whole text was replaced
      return;
    }
    // One event's changes all refer to the text before it (Monaco lists
    // them from the bottom up).
    const changes = [...e.changes].sort((a, b) => a.rangeOffset - b.rangeOffset);
    let delta = 0;
    const edits = changes.map((c) => {
      delta += c.text.length - c.rangeLength;
      return { from: c.rangeOffset, to: c.rangeOffset + c.rangeLength, insert: fromModel(c.text) };
    });
    this.sync.local(edits, this.model.getValueLength() - delta);
  }

  _onMouseDown(e) {
    const pos = e.target?.position;
    if (!pos || !this.options.onCommentClick) return;
    const here = this.commentsAt(this.model.getOffsetAt(pos));
    if (here.length > 0) this.options.onCommentClick(here[0], e.event?.browserEvent, this.editor);
  }

  // --- for the app

  /** Converts a Monaco offset to a code point of the document. */
  toCodePoint(offset) {
    return this.sync.toCodePoint(offset);
  }
  /** Converts a code point of the document to a Monaco offset. */
  toUTF16(cp) {
    return this.sync.toUTF16(cp);
  }
  /** The comment threads whose range holds Monaco offset offset. */
  commentsAt(offset) {
    return this.sync.commentsAt(this.sync.toCodePoint(offset));
  }
  /** Adds a comment on the main selection (or on {from, to}); resolves with it. */
  addComment(text, range) {
    return this.sync.addComment(text, range);
  }
  /**
   * Others' carets as drawn: [{clientId, name, color, pos, element}] with
   * pos the offset Monaco keeps the caret's decoration at and element its
   * DOM node (null when that line is not rendered).
   */
  remoteCarets() {
    const ranges = this.decorations.getRanges();
    return this.carets.map((c) => {
      const r = ranges[c.index];
      return {
        clientId: c.clientId,
        name: c.name,
        color: c.color,
        pos: r ? this.model.getOffsetAt({ lineNumber: r.startLineNumber, column: r.startColumn }) : -1,
        element: this.editor.getDomNode()?.querySelector(`.tandem-caret-${c.n}`) ?? null,
      };
    });
  }
  /** Unbinds: the editor keeps its text and its own undo again. */
  dispose() {
    this.sync.destroy();
    for (const d of this.disposables) d.dispose();
    this.disposables = [];
    delete this.model.undo;
    delete this.model.redo;
    if (this.modelUndo) Object.defineProperty(this.model, "undo", this.modelUndo);
    if (this.modelRedo) Object.defineProperty(this.model, "redo", this.modelRedo);
    this.decorations.clear();
    this.style.remove();
    this.editor.updateOptions({ readOnly: false });
  }
}

/**
 * Binds a Monaco code editor to doc, a tandem.js Doc (open or opening: the
 * editor is read-only until the text has loaded, and then shows the
 * document's text, whatever its model held). Returns the binding; call its
 * dispose() to unbind.
 *
 * Options: selectionDelay (ms, 50), showResolved (false), readOnly (false),
 * onCommentClick(comment, event, editor), onCaretComments(comments),
 * onError(err).
 */
export function bindMonaco(doc, editor, options = {}) {
  return new MonacoBinding(doc, editor, options);
}
