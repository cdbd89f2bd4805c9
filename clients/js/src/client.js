// client.js: the parts of the Tandem client (one source: web/static/tandem.js,
// which the server serves as /tandem.js) that the editor bindings use: the
// OT functions, to reconcile edits held back during an IME composition.
// Bindings get everything else from the Doc they are given.
export { transform, compose, isNoop, normalize } from "../../../web/static/tandem.js";
