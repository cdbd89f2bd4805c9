// Package doc is Tandem's document model: the content of a collaborative
// plain-text document held in a [Rope], its version, and the comments
// anchored to its text, together with the records that cross the boundary
// between the live sessions and storage (op-log entries, snapshots, comment
// and channel-message records).
//
// # Basics
//
// A [Document] applies [ot.Op]s in place: it validates an op against the
// current text first, so a bad op changes nothing, then edits the rope, moves
// every comment anchor through the op and bumps the version. [Replay]
// rebuilds the content at any version from a snapshot plus the ops after it;
// storage and the HTTP API use it for history queries.
//
// [Typist] generates realistic synthetic edit histories (bursts of typing,
// backspacing, cursor jumps, pastes) for tests that must not depend on
// outside data.
//
// # Concurrency
//
// Nothing here is safe for concurrent mutation. In the server one session
// goroutine owns each Document. The package does no I/O and never logs.
package doc
