// Package clustertest holds the integration tests of cluster mode: real
// Tandem nodes (server.Server, in the test process or as child processes)
// on real NATS servers embedded in the test process, with JetStream on
// temporary directories (one server, and a three-server JetStream cluster
// with three replicas), spoken to by real clients over WebSocket and HTTP
// on 127.0.0.1. It has no code of its own; see docs/cluster.md for what the
// tests check.
package clustertest
