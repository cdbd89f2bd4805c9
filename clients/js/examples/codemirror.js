// The CodeMirror 6 example: one document in a CodeMirror editor, with
// others' carets, comments and undo of one's own edits only.
import { EditorSelection, EditorState } from "@codemirror/state";
import { EditorView, drawSelection, highlightActiveLine, keymap, lineNumbers } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { getTandemBinding, tandemCollab } from "../codemirror/index.js";
import { flashThread, open, params, sidebar } from "./common.js";

const p = params();
const { client, doc } = open(p);

const view = new EditorView({
  parent: document.querySelector("#editor"),
  extensions: [
    lineNumbers(),
    EditorState.allowMultipleSelections.of(true),
    history(),
    drawSelection(),
    highlightActiveLine(),
    keymap.of([...defaultKeymap, ...historyKeymap]),
    EditorView.lineWrapping,
    tandemCollab(doc, { onCommentClick: flashThread }),
  ],
});
const binding = getTandemBinding(view);

sidebar(doc, binding, (from, to) => {
  view.dispatch({ selection: EditorSelection.range(binding.toUTF16(from), binding.toUTF16(to)), scrollIntoView: true });
  view.focus();
});

/** For the curious and the browser tests: the page's parts, and its caret in code points. */
window.tandemExample = {
  client,
  doc,
  view,
  binding,
  EditorSelection,
  caret: () => binding.toCodePoint(view.state.selection.main.head),
};
