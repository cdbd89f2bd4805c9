// Type-checks the editor bindings' declarations as an app uses them
// (tsc --strict, with example.ts; see tsconfig.json).
import { EditorState } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import * as monaco from "monaco-editor/editor/editor.api.js";
import { connect, type Comment } from "../../web/static/tandem.js";
import { getTandemBinding, tandemCollab, type TandemBinding } from "./codemirror/index.js";
import { bindMonaco, type MonacoBinding } from "./monaco/index.js";

const client = connect({ url: "http://127.0.0.1:8080" });
const doc = client.openDoc("notes-1", { undoGroupMs: 500 });
const showThread = (c: Comment): void => console.log(c.user.name, c.text);

// CodeMirror: one extension.
const view = new EditorView({
  parent: document.body,
  extensions: [
    EditorState.allowMultipleSelections.of(true),
    history(),
    keymap.of([...defaultKeymap, ...historyKeymap]),
    tandemCollab(doc, { onCommentClick: (c) => showThread(c), onCaretComments: (cs) => cs.forEach(showThread) }),
  ],
});
const cm: TandemBinding | null = getTandemBinding(view);
if (cm) {
  const head: number = cm.toCodePoint(view.state.selection.main.head);
  cm.addComment("Why?").then((c) => showThread(c), (err: unknown) => console.error(err, head));
  for (const c of cm.remoteCarets()) console.log(c.name, c.color, cm.toCodePoint(c.pos));
}

// Monaco: one call, one dispose.
const ed = monaco.editor.create(document.body, { value: "" });
const mo: MonacoBinding = bindMonaco(doc, ed, { selectionDelay: 30, onError: (err) => console.warn(err) });
for (const c of mo.remoteCarets()) console.log(c.name, c.element?.offsetLeft);
const here: Comment[] = mo.commentsAt(0);
console.log(here.length, mo.text().length);
mo.dispose();
