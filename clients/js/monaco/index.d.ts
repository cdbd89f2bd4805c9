// Types of @tandemhq/client/monaco, the Monaco binding (docs/editors.md).
import type { editor } from "monaco-editor/editor/editor.api.js";
import type { Comment, Doc } from "../../../web/static/tandem.js";
import type { Binding, BindingOptions, RemoteCaret } from "../editor/sync.js";

export type { BindingOptions, RemoteCaret } from "../editor/sync.js";

export interface BindMonacoOptions extends BindingOptions {
  /** Called when the user presses the mouse on a comment's text: open the app's comment UI there. */
  onCommentClick?(comment: Comment, event: MouseEvent | undefined, editor: editor.ICodeEditor): void;
}

/** The binding of one Monaco editor (and its model) to one Doc. */
export interface MonacoBinding extends Binding {
  readonly doc: Doc;
  readonly editor: editor.ICodeEditor;
  /** The editor's text as the document holds it ("␍" read as "\r"). */
  text(): string;
  /** Others' carets as drawn: pos is where Monaco keeps the caret's decoration, element its DOM node (null when its line is not rendered). */
  remoteCarets(): (RemoteCaret & { element: HTMLElement | null })[];
  /** Unbinds: the editor keeps its text and gets its own undo back. */
  dispose(): void;
}

/** Binds a Monaco editor to doc: the editor shows the document's text once it has loaded, read-only until then. */
export function bindMonaco(doc: Doc, editor: editor.ICodeEditor, options?: BindMonacoOptions): MonacoBinding;
