// @tandemhq/client/monaco: the Monaco binding. This entry point is
// reserved; the binding (bindMonaco(doc, editor, options)) is not written yet.
export {};
