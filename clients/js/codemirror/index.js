// @tandemhq/client/codemirror: the CodeMirror 6 binding. This entry point is
// reserved; the binding (tandemCollab(doc, options)) is not written yet.
export {};
