// Package ot is Tandem's operational-transformation engine for plain text.
//
// An [Op] is a sequence of components that walk a document from its start:
// retain n code points, insert a string, or delete n code points. Whatever an
// op does not reach is kept, so an op carries no trailing retain. All
// positions and lengths count Unicode code points, never bytes or UTF-16
// units, exactly as the wire protocol (docs/PROTOCOL.md, section Operations)
// requires.
//
// # Basics
//
//   - [Apply] and [ApplyTo] apply an op to a string or, in place, to any
//     [Text] (the document model's rope implements it).
//   - [Transform] makes two concurrent ops applicable one after the other;
//     [Compose] merges consecutive ops into one; [Invert] undoes an op given
//     the text it was applied to.
//   - [TransformIndex], [TransformRange] and [TransformSelection] move
//     cursors, selections and comment anchors through an op.
//   - Ops encode to and decode from JSON as in the protocol: `[5,"hi",-3]`.
//
// # Canonical form
//
// Every op this package returns is canonical: no zero-length component,
// adjacent components of one kind merged, within a stretch between two
// retains the inserts come before the deletes, and no trailing retain. Two
// canonical ops that do the same thing are equal component for component,
// which is what lets a client and the server agree on tie-breaks.
//
// # Concurrency
//
// Ops are plain values; every function here is pure and safe to call from
// many goroutines as long as nobody mutates an op that is being read.
// [ApplyTo] mutates its Text and is as safe as that Text.
//
// # Caveats
//
// Transforming over a composition of ops is not the same as transforming
// over those ops one by one when an insert meets text another op deleted.
// The server transforms an incoming op over its history one op at a time, in
// version order, and so must every client.
package ot
