// The Monaco example: one document in a Monaco editor, with others' carets,
// comments and undo of one's own edits only.
import * as monaco from "monaco-editor/editor/editor.api.js";
import { bindMonaco } from "../monaco/index.js";
import { flashThread, open, params, sidebar } from "./common.js";

// Monaco runs some work in a web worker, built beside this page.
self.MonacoEnvironment = { getWorker: () => new Worker(new URL("editor.worker.js", location.href)) };

const p = params();
// Undo takes back one's own edits through the document; edits within
// 500 ms undo together.
const { client, doc } = open(p, { undoGroupMs: 500 });

const editor = monaco.editor.create(document.querySelector("#editor"), {
  value: "",
  language: "plaintext",
  automaticLayout: true,
  minimap: { enabled: false },
  wordWrap: "on",
  fontSize: 15,
  padding: { top: 18 },
  quickSuggestions: false,
  wordBasedSuggestions: "off",
});
const binding = bindMonaco(doc, editor, { onCommentClick: flashThread });

sidebar(doc, binding, (from, to) => {
  const a = editor.getModel().getPositionAt(binding.toUTF16(from));
  const b = editor.getModel().getPositionAt(binding.toUTF16(to));
  editor.setSelection({ startLineNumber: a.lineNumber, startColumn: a.column, endLineNumber: b.lineNumber, endColumn: b.column });
  editor.focus();
});

/** For the curious and the browser tests: the page's parts, and its caret in code points. */
window.tandemExample = {
  client,
  doc,
  editor,
  binding,
  monaco,
  caret: () => binding.toCodePoint(editor.getModel().getOffsetAt(editor.getPosition())),
};
