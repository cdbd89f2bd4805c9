// client.js: the parts of the Tandem client that the editor bindings use:
// the OT functions, to reconcile edits held back during an IME composition.
// Bindings get everything else from the Doc they are given. The client's
// one source is web/static/tandem.js (the server's /tandem.js); in the npm
// package it is dist/tandem.js, copied from there when the package is built.
export { transform, compose, isNoop, normalize } from "../../../web/static/tandem.js";
