// Package natsstore keeps Tandem's state on NATS JetStream, for cluster
// mode: any number of Tandem nodes, none with durable state of its own,
// share documents and channels through one NATS server or cluster. It is
// the JetStream counterpart of package storage (bbolt, single node): it
// speaks in doc's records ([doc.Info], [doc.OpRecord], [doc.Snapshot],
// [doc.Comment], [doc.Message], [doc.User]), implements the session's
// storage interfaces where their contract fits several writers, and adds
// what several nodes need: compare-and-append with typed conflicts,
// followers that deliver what other nodes store, presence across nodes and
// core NATS subjects for ephemeral traffic. It never imports session.
//
// # Basics
//
// [Open] connects (URLs, credentials file, TLS, connection name) and calls
// [New], which checks that JetStream is there ([ErrNoJetStream] with a hint
// when the server runs without -js), creates or updates every stream and
// bucket below with Config.Replicas replicas (1 by default; 3 on a
// three-server cluster), and starts the snapshotter and presence. A Store
// is safe for concurrent use; [Store.Close] says goodbye to the other
// nodes, waits for queued appends and stops everything. Every node of one
// deployment must use the same Config.Prefix ("tandem" below), Namespaces
// and SnapshotEvery.
//
// # Names
//
// A document id, channel, user id or name is turned into one token that is
// a valid subject token and key-value key: ASCII letters, digits, `_` and
// `-` as they are, every other byte as `=XX` (so `a.b` is `a=2Eb`, `é` is
// `=C3=A9`); names whose token would pass 240 bytes become `=_` and their
// SHA-256. Below, <doc>, <ch>, <ns>, <user> are such tokens; <epoch> is 16
// hex digits.
//
// # Streams
//
//	TANDEM_OPS  tandem.ops.<doc>.<epoch>
//	    The op log of each document incarnation, on a subject of its own. A
//	    message holds a batch of consecutive ops [v, v+k) (headers
//	    Tandem-Version v and Tandem-Count k; body the JSON records, with
//	    versions, uids, authors and times) and carries a Nats-Msg-Id made of
//	    the epoch, v and a hash of the body. Appends set the expected last
//	    subject sequence to the sequence of the message that ends at v: of
//	    several nodes appending at v, exactly one wins. A deleted document's
//	    subject holds one marker (header Tandem-Deleted) that rolled up its
//	    ops and expires after DeleteMarkerTTL. No limits; file storage.
//
//	TANDEM_CH_<ns>  tandem.ch.<ns>.<ch>.m and tandem.ch.<ns>.<ch>.e
//	    One stream per channel namespace that keeps history (Config.
//	    Namespaces; "" is the default namespace, token `=`, used by every
//	    namespace not listed), whose per-subject message limit and maximum
//	    age are the namespace's history limits: the stream trims. A
//	    channel's messages are on .m (headers Tandem-Offset and
//	    Tandem-Epoch; body the JSON doc.Message), its epoch record on .e
//	    (JSON {epoch, used}, never expiring). Every write to a channel
//	    expects the last sequence of the filter tandem.ch.<ns>.<ch>.*, both
//	    subjects: compare-and-append on the whole channel.
//
// # Key-value buckets
//
// Each bucket is a stream KV_<bucket> keeping one revision per key, with
// direct gets off, so that reads are answered by the stream leader and see
// every write acknowledged before them (a replica's direct get may lag).
//
//	tandem_docs         <doc>                      JSON DocMeta: id, title, created,
//	                                               epoch, compaction point
//	tandem_snaps        <doc>.<epoch>.<v in hex>   a snapshot: 'I' + content, or 'C' + a
//	                                               manifest of chunks at <key>.<n in hex>
//	tandem_comments     <doc>.<epoch>.<comment>    JSON doc.Comment
//	tandem_receipts     <ch>                       JSON {epoch, users: {user: offset}}
//	tandem_retractions  <ch>                       JSON {epoch, items: {offset: tombstone}}
//	tandem_users        <user>                     JSON doc.User
//	tandem_usernames    <name>                     user id
//	tandem_revocations  t.<token>, u.<user>        JSON {at}: a revoked token's expiry,
//	                                               a user's revoked-before time
//
// # Core NATS subjects (not stored)
//
//	tandem.live.ch.<ch>, tandem.live.doc.<doc>  ephemeral messages and cursors
//	tandem.pres.<ch>                            presence events of a channel
//	tandem.presq.<ch>                           presence queries (every node answers)
//	tandem.nodes                                node heartbeats and goodbyes
//
// A node subscribes to tandem.live.* and tandem.pres.* only for the
// channels and documents its own clients use, and to tandem.presq.* and
// tandem.nodes always (a query per channel a node starts watching, a
// heartbeat per node and HeartbeatInterval).
//
// # Guarantees
//
// An append, a publish or a write returns nil only once JetStream has
// acknowledged it, that is once it is stored on a quorum of the stream's
// replicas: with three replicas, it survives the loss of any one server.
//
// Documents: versions are consecutive from 0, each won by exactly one
// append ([Store.AppendOps], [Store.AppendOpAsync]); a loser gets a
// [*ConflictError] naming the head and writes nothing. A failed async
// append fences its document: every later AppendOpAsync of it fails until
// [Store.ResumeAppends], so that no op made on top of a failed one lands
// (the compare-and-append checks versions, not content). An append whose
// response was lost is retried with the same message id and recognised
// when its first attempt was stored, so an acknowledged op is stored once.
// Exactly-once by uid across nodes is the caller's: an op made against
// base can only have landed at a version >= base, which [Store.FindUID]
// reads, and two appends of one uid are serialised by the compare-and-
// append, the loser seeing the winner's ops before it retries. A deleted
// document's marker makes every later append fail with ErrNotFound, and a
// new incarnation has another epoch, hence another subject and keys:
// nothing of the old one leaks into it. [Store.FollowOps] delivers a
// document's ops from any version, in order, each once, as they are
// stored by any node. [Store.Compact] purges a subject up to a snapshot.
//
// Channels: [Store.PublishMessage] assigns offsets by compare-and-append,
// so they are consecutive from 1 and the same for every reader on every
// node; [Store.FollowChannel] delivers them in offset order. The epoch
// exists from the first [Store.ChannelState]. When every message of a
// channel has aged out, its next message starts a new epoch at offset 1
// (storage keeps counting instead): no offset is ever reused within an
// epoch. Retraction keeps a tombstone; read receipts only move forward.
//
// Presence: every node lists the members of a channel on every node
// ([Presence.Watch], [Presence.Members]); a node that dies takes its
// members out on every other node within NodeTimeout + HeartbeatInterval
// of its last heartbeat (3 s + 1 s by default); one that closes, at once.
// A node heard of for the first time, or back from the dead, is asked
// again for the members of every watched channel, as is a node that was
// slow to answer a watch's first query.
//
// Comments and revocations changed by any node reach the others through
// key-value watches ([Store.WatchComments], [Store.WatchRevocations]).
// [Store.Export] and [Store.Import] read and write the single-node export
// format (storage.WriteExport, storage.ReadExport), so documents move
// between a single node and a cluster either way.
//
// # Caveats
//
// A channel publish whose response is lost is retried with the same
// message id; past the stream's duplicate window (2 minutes) a retry could
// store it twice. The data of a retracted channel message that is the
// channel's newest stays in the stream (no read returns it) until the
// history limits remove it, because the newest message anchors the next
// offset. A deletion that stops half-way (a node dying between its steps)
// is finished by the next CreateDoc or DeleteDoc of that id. Each
// follower is an ordered consumer: one per open document or followed
// channel per node.
package natsstore
