// Types shared by the editor bindings (codemirror/, monaco/).
import type { Comment } from "../../../web/static/tandem.js";

/** Options every binding takes. */
export interface BindingOptions {
  /** Milliseconds to coalesce the local selection's updates into one (50). */
  selectionDelay?: number;
  /** Mark resolved comments too (false). */
  showResolved?: boolean;
  /** Never allow typing (false); the editor is read-only anyway until the text has loaded. */
  readOnly?: boolean;
  /** Called with the comment threads under the main caret whenever that set changes. */
  onCaretComments?(comments: Comment[]): void;
  /** Called with errors the binding recovered from (an edit the document refused, a resynchronised text). Default: console.error. */
  onError?(err: unknown): void;
}

/** Another user's caret as the editor draws it. */
export interface RemoteCaret {
  clientId: string;
  name: string;
  color: string;
  /** The editor's (UTF-16) position of the caret. */
  pos: number;
}

/** What every binding offers the app; positions are the editor's (UTF-16) unless named code points. */
export interface Binding {
  /** Converts an editor position to a code point of the document. */
  toCodePoint(pos: number): number;
  /** Converts a code point of the document to an editor position. */
  toUTF16(cp: number): number;
  /** The comment threads whose range holds editor position pos. */
  commentsAt(pos: number): Comment[];
  /** Adds a comment on the main selection, or on range (editor positions). */
  addComment(text: string, range?: { from: number; to: number }): Promise<Comment>;
}
