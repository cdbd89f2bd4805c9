// codemirror/index.js (@tandemhq/client/codemirror): the CodeMirror 6 binding of a Tandem document.
//
//   import { tandemCollab } from "@tandemhq/client/codemirror";
//   const doc = client.openDoc("notes-1");
//   new EditorView({ parent, extensions: [history(), keymap.of([...historyKeymap, ...defaultKeymap]), tandemCollab(doc)] });
//
// The binding turns each local transaction (a multi-range ChangeSet
// included) into one op, applies the document's other changes as
// transactions annotated Transaction.remote with addToHistory false (so
// CodeMirror's history undoes only the local user's changes, mapped over
// everyone else's), draws other users' carets and selections and the
// comments as decorations that CodeMirror maps between updates, sends the
// local selection (coalesced), and holds both directions back during an IME
// composition. @codemirror/state and @codemirror/view are peer
// dependencies: the app brings its own copies. docs/editors.md has the
// rules; ../editor/sync.js the editor-independent half.

import { Annotation, ChangeSet, EditorState, StateEffect, StateField, Transaction } from "@codemirror/state";
import { Decoration, EditorView, ViewPlugin, WidgetType } from "@codemirror/view";
import { PositionIndex, editsToOp, opToSplices } from "../editor/positions.js";
import { EditorSync } from "../editor/sync.js";

/** Marks the transactions by which the binding applies the document's changes. */
export const tandemRemote = Annotation.define();

const bindings = new WeakMap(); // EditorView → TandemBinding

/**
 * Returns the Tandem binding of view (the object the tandemCollab extension
 * made for it), or null.
 */
export function getTandemBinding(view) {
  return bindings.get(view) ?? null;
}

// ----- pure conversions (exported for tests and other bindings)

/** Returns a ChangeSet's changes as parallel UTF-16 edits [{from, to, insert}]. */
export function changeSetToEdits(changes) {
  const edits = [];
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    edits.push({ from: fromA, to: toA, insert: inserted.sliceString(0, inserted.length, "\n") });
  });
  return edits;
}

/** Returns the Tandem op (code points) of a ChangeSet made on text (a string). */
export function changeSetToOp(changes, text) {
  return editsToOp(changeSetToEdits(changes), new PositionIndex(text));
}

/**
 * Returns the ChangeSet that UTF-16 splices (each in the text the previous
 * left, as a Doc "change" event gives them) make of a document of length
 * UTF-16 units.
 */
export function splicesToChangeSet(splices, length) {
  let cs = ChangeSet.empty(length);
  for (const s of splices) {
    cs = cs.compose(ChangeSet.of({ from: s.index, to: s.index + s.deleteCount, insert: s.text }, cs.newLength, "\n"));
  }
  return cs;
}

/** Returns the ChangeSet of a Tandem op (code points) on text (a string). */
export function opToChangeSet(op, text) {
  return splicesToChangeSet(opToSplices(op, text), text.length);
}

// ----- the caret widget

class CaretWidget extends WidgetType {
  constructor(clientId, name, color) {
    super();
    this.clientId = clientId;
    this.name = name;
    this.color = color;
  }
  eq(other) {
    return other.clientId === this.clientId && other.name === this.name && other.color === this.color;
  }
  toDOM() {
    const caret = document.createElement("span");
    caret.className = "cm-tandem-caret";
    caret.style.borderLeftColor = this.color;
    caret.dataset.clientId = this.clientId;
    caret.dataset.name = this.name;
    caret.setAttribute("aria-hidden", "true");
    const label = document.createElement("span");
    label.className = "cm-tandem-caret-label";
    label.style.backgroundColor = this.color;
    label.textContent = this.name;
    caret.append("\u2060", label); // a word joiner gives the caret a line's height
    return caret;
  }
  ignoreEvent() {
    return true;
  }
}

const theme = EditorView.baseTheme({
  ".cm-tandem-caret": {
    position: "relative",
    borderLeft: "2px solid",
    marginLeft: "-1px",
    marginRight: "-1px",
    pointerEvents: "none",
  },
  ".cm-tandem-caret-label": {
    position: "absolute",
    bottom: "100%",
    left: "-2px",
    padding: "0 4px",
    borderRadius: "3px 3px 3px 0",
    color: "white",
    fontSize: "11px",
    lineHeight: "15px",
    fontFamily: "system-ui, sans-serif",
    whiteSpace: "nowrap",
    userSelect: "none",
    zIndex: "10",
  },
  ".cm-tandem-comment": {
    backgroundColor: "rgba(250, 204, 21, 0.35)",
    borderBottom: "2px solid rgba(202, 138, 4, 0.8)",
    cursor: "pointer",
  },
});

/**
 * The binding of one EditorView to one Doc: what getTandemBinding returns.
 * Positions in its methods are CodeMirror's (UTF-16) unless named code
 * points.
 */
class TandemBinding {
  constructor(view, doc, options, fx) {
    this.view = view;
    this.doc = doc;
    this.fx = fx;
    this.inUpdate = false;
    this.domComposing = false;
    this.sync = new EditorSync(doc, this, options);
  }

  // --- EditorSync's adapter

  text() {
    return this.view.state.doc.toString();
  }
  length() {
    return this.view.state.doc.length;
  }
  apply(splices) {
    const changes = splicesToChangeSet(splices, this.view.state.doc.length);
    this.view.dispatch({
      changes,
      annotations: [tandemRemote.of(true), Transaction.remote.of(true), Transaction.addToHistory.of(false)],
    });
  }
  selection() {
    const sel = this.view.state.selection;
    const ranges = [sel.main, ...sel.ranges.filter((_, i) => i !== sel.mainIndex)];
    return ranges.map((r) => ({ anchor: r.anchor, head: r.head }));
  }
  composing() {
    return this.domComposing || this.view.composing;
  }
  busy() {
    return this.inUpdate;
  }
  setEditable(on) {
    if (this.view.state.field(this.fx.field).editable === on) return;
    this.view.dispatch({ effects: this.fx.setEditable.of(on), annotations: tandemRemote.of(true) });
  }
  render({ cursors, comments }) {
    const carets = [];
    const marks = [];
    for (const c of cursors) {
      const bg = `background-color: color-mix(in srgb, ${c.color} 25%, transparent)`;
      for (const r of c.ranges) {
        if (r.anchor !== r.head) {
          marks.push(
            Decoration.mark({ class: "cm-tandem-selection", attributes: { style: bg, "data-client-id": c.clientId } }).range(Math.min(r.anchor, r.head), Math.max(r.anchor, r.head)),
          );
        }
        carets.push(Decoration.widget({ widget: new CaretWidget(c.clientId, c.name, c.color), side: 1 }).range(r.head));
      }
    }
    const commentMarks = [];
    for (const { comment, from, to } of comments) {
      if (from >= to) continue;
      commentMarks.push(
        Decoration.mark({
          class: "cm-tandem-comment" + (comment.resolved ? " cm-tandem-comment-resolved" : ""),
          attributes: { "data-comment-id": comment.id },
        }).range(from, to),
      );
    }
    this.view.dispatch({
      effects: this.fx.setDecorations.of({
        cursors: Decoration.set([...marks, ...carets], true),
        comments: Decoration.set(commentMarks, true),
      }),
      annotations: tandemRemote.of(true),
    });
  }

  // --- the view's side

  update(u) {
    this.inUpdate = true;
    try {
      for (const tr of u.transactions) {
        if (!tr.docChanged || tr.annotation(tandemRemote)) continue;
        this.sync.local(changeSetToEdits(tr.changes), tr.startState.doc.length);
      }
      if (u.selectionSet || u.docChanged) this.sync.selectionChanged();
    } finally {
      this.inUpdate = false;
    }
  }

  // --- for the app

  /** Converts a CodeMirror position to a code point of the document. */
  toCodePoint(pos) {
    return this.sync.toCodePoint(pos);
  }
  /** Converts a code point of the document to a CodeMirror position. */
  toUTF16(cp) {
    return this.sync.toUTF16(cp);
  }
  /** The comment threads whose range holds CodeMirror position pos. */
  commentsAt(pos) {
    return this.sync.commentsAt(this.sync.toCodePoint(pos));
  }
  /** Adds a comment on the main selection (or on {from, to}); resolves with it. */
  addComment(text, range) {
    return this.sync.addComment(text, range);
  }
  /**
   * Others' carets as drawn: [{clientId, name, color, pos}] with pos the
   * CodeMirror position the caret's DOM element stands at.
   */
  remoteCarets() {
    return [...this.view.contentDOM.querySelectorAll(".cm-tandem-caret")].map((el) => ({
      clientId: el.dataset.clientId,
      name: el.dataset.name,
      color: el.style.borderLeftColor,
      pos: this.view.posAtDOM(el),
    }));
  }
}

/**
 * Returns the CodeMirror extension that binds an editor to doc, a tandem.js
 * Doc (open or opening: the editor is read-only until its text has loaded,
 * and then shows the document's text, whatever it held before).
 *
 * Options: selectionDelay (ms, 50), showResolved (false), readOnly (false),
 * onCommentClick(comment, event), onCaretComments(comments), onError(err).
 */
export function tandemCollab(doc, options = {}) {
  const setDecorations = StateEffect.define();
  const setEditable = StateEffect.define();
  const field = StateField.define({
    create: () => ({ cursors: Decoration.none, comments: Decoration.none, editable: false }),
    update(value, tr) {
      let { cursors, comments, editable } = value;
      if (tr.docChanged) {
        cursors = cursors.map(tr.changes);
        comments = comments.map(tr.changes);
      }
      for (const e of tr.effects) {
        if (e.is(setDecorations)) ({ cursors, comments } = e.value);
        else if (e.is(setEditable)) editable = e.value;
      }
      if (cursors === value.cursors && comments === value.comments && editable === value.editable) return value;
      return { cursors, comments, editable };
    },
    provide: (f) => [
      EditorView.decorations.from(f, (v) => v.comments),
      EditorView.decorations.from(f, (v) => v.cursors),
      EditorState.readOnly.from(f, (v) => !v.editable),
      EditorView.editable.from(f, (v) => v.editable),
    ],
  });
  const fx = { field, setDecorations, setEditable };
  const plugin = ViewPlugin.define((view) => {
    const binding = new TandemBinding(view, doc, options, fx);
    bindings.set(view, binding);
    // The view cannot take transactions while it builds its plugins.
    queueMicrotask(() => {
      if (!binding.sync.destroyed) binding.sync.start();
    });
    return {
      update: (u) => binding.update(u),
      destroy: () => {
        binding.sync.destroy();
        if (bindings.get(view) === binding) bindings.delete(view);
      },
    };
  });
  const events = EditorView.domEventHandlers({
    compositionstart(_e, view) {
      const b = bindings.get(view);
      if (b) b.domComposing = true;
      return false;
    },
    compositionend(_e, view) {
      const b = bindings.get(view);
      if (b) {
        b.domComposing = false;
        b.sync.compositionEnd();
      }
      return false;
    },
    click(e, view) {
      const el = e.target instanceof Element ? e.target.closest("[data-comment-id]") : null;
      const comment = el && doc.comments.get(el.getAttribute("data-comment-id"));
      if (comment && options.onCommentClick) options.onCommentClick(comment, e, view);
      return false;
    },
  });
  // Only "\n" separates lines, so a "\r" in the document stays a character
  // and CodeMirror's positions are the document's UTF-16 indices exactly.
  return [EditorState.lineSeparator.of("\n"), field, plugin, events, theme];
}
