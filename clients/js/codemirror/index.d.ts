// Reserved for the CodeMirror 6 binding; it exports nothing yet.
export {};
