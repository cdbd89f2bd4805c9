// Types of @tandemhq/client/codemirror, the CodeMirror 6 binding (docs/editors.md).
import type { AnnotationType, ChangeSet, Extension } from "@codemirror/state";
import type { EditorView } from "@codemirror/view";
import type { Comment, Doc, Op, Splice } from "../../../web/static/tandem.js";
import type { Binding, BindingOptions, RemoteCaret } from "../editor/sync.js";

export type { BindingOptions, RemoteCaret } from "../editor/sync.js";

export interface TandemCollabOptions extends BindingOptions {
  /** Called when the user clicks a comment's mark: open the app's comment UI there. */
  onCommentClick?(comment: Comment, event: MouseEvent, view: EditorView): void;
}

/** The binding of one EditorView to one Doc (getTandemBinding). */
export interface TandemBinding extends Binding {
  readonly view: EditorView;
  readonly doc: Doc;
  /** Others' carets as drawn, each at the position of its DOM element. */
  remoteCarets(): RemoteCaret[];
}

/** One change to a text, in UTF-16 indices of the text before it. */
export interface Edit {
  from: number;
  to: number;
  insert: string;
}

/** Marks the transactions by which the binding applies the document's changes (with Transaction.remote and addToHistory false). */
export const tandemRemote: AnnotationType<boolean>;
/** The extension binding an editor to doc: the editor shows the document's text once it has loaded, read-only until then. */
export function tandemCollab(doc: Doc, options?: TandemCollabOptions): Extension;
/** The binding tandemCollab made for view, or null. */
export function getTandemBinding(view: EditorView): TandemBinding | null;
/** A ChangeSet's changes as parallel edits on the text before it. */
export function changeSetToEdits(changes: ChangeSet): Edit[];
/** The Tandem op (code points) of a ChangeSet made on text. */
export function changeSetToOp(changes: ChangeSet, text: string): Op;
/** The ChangeSet of a Doc change event's splices, on a document of length UTF-16 units. */
export function splicesToChangeSet(splices: Splice[], length: number): ChangeSet;
/** The ChangeSet of a Tandem op on text. */
export function opToChangeSet(op: Op, text: string): ChangeSet;
