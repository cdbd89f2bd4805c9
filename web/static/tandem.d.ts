// Type declarations for tandem.js, the Tandem client (docs/js-client.md).
// Positions and lengths in documents count Unicode code points.

/** The client's name as it introduces itself in the connect frame. */
export const CLIENT_NAME: string;

// ---------------------------------------------------------------------------
// Code points and UTF-16

/** Returns the number of code points in s (a lone surrogate counts one). */
export function codePointLength(s: string): number;
/** Returns the UTF-16 index of code point cp in s (s.length past the end). */
export function codePointToUtf16(s: string, cp: number): number;
/** Returns how many code points of s start before UTF-16 index i. */
export function utf16ToCodePoint(s: string, i: number): number;
/** Returns s with each lone surrogate replaced by U+FFFD. */
export function wellFormed(s: string): string;

// ---------------------------------------------------------------------------
// Operations

/** One component: n > 0 retains n code points, a string inserts it, -n deletes n. */
export type Component = number | string;
/** An operation, as the protocol carries it: `[5, "hi", -3]`. */
export type Op = Component[];

/** A caret or selection: anchor where it started, head where the caret is. */
export interface Selection {
  anchor: number;
  head: number;
}

/** A stretch of text [from, to), as a comment anchor holds. */
export interface Range {
  from: number;
  to: number;
}

/** An op that is malformed or does not fit the text: a TandemError with code "invalid_op". */
export class OpError extends TandemError {
  constructor(message: string);
}

/** Assembles a canonical op one component at a time (Go ot.Builder). */
export class OpBuilder {
  constructor();
  retain(n: number): this;
  insert(s: string): this;
  delete(n: number): this;
  /** Returns the canonical op built so far and resets the builder. */
  op(): Op;
}

export function normalize(op: Op): Op;
export function isCanonical(op: Op): boolean;
export function baseLength(op: Op): number;
export function delta(op: Op): number;
export function isNoop(op: Op): boolean;
export function splice(pos: number, del: number, ins: string): Op;
/** Throws OpError unless op applies to a text of length code points. */
export function check(op: Op, length: number): void;
export function apply(s: string, op: Op): string;
/** [a2, b2] with apply(apply(s, a), b2) === apply(apply(s, b), a2); a's inserts first. */
export function transform(a: Op, b: Op): [Op, Op];
export function compose(a: Op, b: Op): Op;
export function invert(op: Op, base: string): Op;
export function transformIndex(op: Op, index: number, own: boolean): number;
export function transformRange(op: Op, r: Range): Range;
export function transformSelection(op: Op, s: Selection, own: boolean): Selection;

// ---------------------------------------------------------------------------
// Sizes on the wire

/** The server's size limits (Client.limits). */
export interface Limits {
  /** The largest frame the server reads, JSON-encoded, in bytes. */
  maxFrameBytes: number;
  /** The most UTF-8 bytes one op may insert. */
  maxOpBytes: number;
  /** The longest document, in code points; null when the server does not say. */
  maxDocLen: number | null;
}

/** The limits assumed when the server names none: 64 KiB for both byte limits. */
export const DEFAULT_LIMITS: Readonly<Limits>;
/** The number of bytes s takes in UTF-8. */
export function utf8Length(s: string): number;
/** The number of bytes op takes as JSON.stringify writes it, in UTF-8. */
export function opJSONLength(op: Op): number;
/** Budgets of one op: UTF-8 bytes inserted, bytes of its JSON. */
export interface SplitLimits {
  maxInsertBytes: number;
  maxJSONBytes: number;
}
/** Cuts op into a head that fits limits and the rest (null when op fits); head then rest does what op does. */
export function splitHead(op: Op, limits: SplitLimits): [Op, Op | null];
/** Cuts op into ops that each fit limits, to be applied one after the other. */
export function splitOp(op: Op, limits: SplitLimits): Op[];

/** The OT functions as one namespace. */
export const ot: Readonly<{
  OpBuilder: typeof OpBuilder;
  OpError: typeof OpError;
  normalize: typeof normalize;
  isCanonical: typeof isCanonical;
  baseLength: typeof baseLength;
  delta: typeof delta;
  isNoop: typeof isNoop;
  splice: typeof splice;
  check: typeof check;
  apply: typeof apply;
  transform: typeof transform;
  compose: typeof compose;
  invert: typeof invert;
  transformIndex: typeof transformIndex;
  transformRange: typeof transformRange;
  transformSelection: typeof transformSelection;
}>;

// ---------------------------------------------------------------------------
// Errors and events

/** Error codes of the protocol, and the client's own. */
export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "rate_limited"
  | "too_large"
  | "conflict"
  | "unavailable"
  | "internal"
  | "disconnected"
  | "closed"
  | "not_ready"
  | "storage"
  | "invalid_op"
  | "invalid_options"
  | "already_subscribed"
  | "already_open"
  | (string & {});

/** Every failure the client reports: an error frame from the server, a refused or closed connection, or a misuse of the API. */
export class TandemError extends Error {
  constructor(code: ErrorCode, message?: string, frame?: ErrorFrame);
  code: ErrorCode;
  frame?: ErrorFrame;
  /** When the server closed the connection (a refused token: 4001), its close code. */
  closeCode?: number;
  /** On a document's error for an edit the server refused for good: the ops rolled back. */
  ops?: Op[];
}

export interface ErrorFrame {
  id?: number;
  type: "error";
  code: ErrorCode;
  message: string;
  channel?: string;
  doc?: string;
}

type Handler = (...args: any[]) => void;

/** The event methods every Tandem object has. */
export interface Emitter<Events extends { [K in keyof Events]: Handler }> {
  /** Calls fn on every event; returns a function that stops it. */
  on<K extends keyof Events>(event: K, fn: Events[K]): () => void;
  /** Calls fn on the next event only; returns a function that cancels it. */
  once<K extends keyof Events>(event: K, fn: Events[K]): () => void;
  off<K extends keyof Events>(event: K, fn: Events[K]): void;
}

// ---------------------------------------------------------------------------
// Client

/** A user as the server shows it. */
export interface User {
  id: string;
  name: string;
  color: string;
}

/** Web Storage (localStorage) or anything with its three methods. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface ConnectOptions {
  /** The server: http(s)://host[:port] (the path /ws is added) or a ws(s):// URL. */
  url: string;
  /**
   * A JWT, or a function returning one (or a promise of one). A function is
   * called for every connection attempt and before the token expires, to
   * refresh it. Empty in development mode.
   */
  token?: string | (() => string | Promise<string>);
  /** Development mode only: the guest's user id and display name. */
  user?: string;
  name?: string;
  /** The WebSocket class; by default globalThis.WebSocket. */
  WebSocket?: unknown;
  /** Where unsent edits are kept across reloads; default localStorage when there is one; null: nowhere. */
  storage?: StorageLike | null;
  /** Prefix of storage keys; default "tandem:<ws url>:". */
  storagePrefix?: string;
  /** Reconnection delays in ms: min (default 500) times factor (2) per attempt, capped at max (30000), with jitter. */
  backoff?: { min?: number; max?: number; factor?: number };
  /** How long one attempt may take to get connected, in ms; default 10000. */
  connectTimeout?: number;
  /** While an op waits for its ack: ping every ackTimeout/2 ms, drop a connection silent for ackTimeout ms; default 5000, 0 never. */
  ackTimeout?: number;
}

export type Status = "connecting" | "connected" | "reconnecting" | "disconnected";

export interface StatusDetail {
  /** Reconnection attempt number (reconnecting / connecting after a failure). */
  attempt?: number;
  /** Milliseconds until that attempt. */
  delay?: number;
  /** Close code and reason of the connection that ended. */
  code?: number;
  reason?: string;
  clientId?: string;
  user?: User;
  server?: string;
}

export interface ClientEvents {
  status: (status: Status, detail: StatusDetail) => void;
  /** data: what the application's connect hook attached (docs/hooks.md), when it attached any. */
  connected: (info: { clientId: string; user: User; server: string; data?: any }) => void;
  disconnect: (info: { code?: number; reason?: string }) => void;
  refreshed: (info: {}) => void;
  error: (err: TandemError) => void;
}

/** Connects to a Tandem server; the client keeps reconnecting until close(). */
export function connect(options: ConnectOptions): Client;

export class Client implements Emitter<ClientEvents> {
  constructor(options: ConnectOptions);
  readonly url: string;
  readonly status: Status;
  /** This connection's id; null before the first connected. */
  readonly clientId: string | null;
  readonly user: User | null;
  /** What the application's connect hook attached to the connected frame (docs/hooks.md), or null. */
  readonly data: any;
  /** The server's size limits, from its connected frame (the defaults until then). */
  readonly limits: Limits;
  readonly storage: StorageLike | null;
  readonly storagePrefix: string;
  on<K extends keyof ClientEvents>(event: K, fn: ClientEvents[K]): () => void;
  once<K extends keyof ClientEvents>(event: K, fn: ClientEvents[K]): () => void;
  off<K extends keyof ClientEvents>(event: K, fn: ClientEvents[K]): void;
  /** Resolves when connected (at once if it is); rejects when the client stops for good: a TandemError "unauthorized" (closeCode 4001) for a refused token, "closed" after close(). */
  whenConnected(): Promise<void>;
  /** Round-trip time of a ping, in ms. */
  ping(): Promise<number>;
  /**
   * Calls method of the application's backend (the server's rpc hook, docs/hooks.md) with data;
   * resolves with its answer (null when it gave none). Rejects with a TandemError: the
   * application's code and message when it refused, "unavailable" when it failed, "not_found"
   * when no hook takes the method, "disconnected" when the connection dropped first.
   */
  rpc<T = any>(method: string, data?: any): Promise<T>;
  /** Asks the token callback for a new token and sends it now. */
  refreshToken(): Promise<unknown>;
  /** Drops the current connection and reconnects at once. */
  reconnect(): void;
  /** Closes for good; unacknowledged edits stay in storage. */
  close(): void;
  subscribe(channel: string, onMessage?: (message: Message) => void, options?: SubscribeOptions): Subscription;
  getSubscription(channel: string): Subscription | undefined;
  openDoc(id: string, options?: OpenDocOptions): Doc;
  getDoc(id: string): Doc | undefined;
}

// ---------------------------------------------------------------------------
// Channels

export interface Since {
  offset: number;
  epoch: string;
}

export interface SubscribeOptions {
  /** Recover what was published after this position (saved from an earlier subscription). */
  since?: Since;
}

export interface Message {
  channel: string;
  /** null for an ephemeral message. */
  offset: number | null;
  event: string;
  data: any;
  from: {
    user?: string;
    clientId?: string;
    /** @deprecated Use clientId; removed in the next release. */
    client_id?: string;
  } | null;
  ts: string;
  /** Set on a retracted message recovered from history (it has no data). */
  retracted?: true;
}

export interface Member {
  clientId: string;
  /** @deprecated Use clientId; removed in the next release. */
  client_id: string;
  user: User;
  state?: any;
}

export interface PublishOptions {
  /** Deliver to current subscribers only; not stored, no offset. */
  ephemeral?: boolean;
  /** false: leave this connection out of the delivery. */
  echo?: boolean;
}

export interface SubscriptionEvents {
  message: (message: Message) => void;
  retracted: (e: { offset: number; by: string }) => void;
  receipt: (e: { user: string; offset: number; ts: string }) => void;
  /** data: what the application's subscribe hook attached (docs/hooks.md), when it attached any. */
  subscribed: (e: { offset: number; epoch: string; recovered: boolean; resumed: boolean; data?: any }) => void;
  /** A resubscription could not recover every missed message. */
  gap: (e: { offset: number; epoch: string; since: number | null }) => void;
  unsubscribed: (e: { reason: string }) => void;
  error: (err: TandemError) => void;
}

export interface Subscription extends Emitter<SubscriptionEvents> {
  readonly client: Client;
  readonly channel: string;
  /** The last offset seen; null before the first subscribed. */
  readonly offset: number | null;
  readonly epoch: string | null;
  /** user id → highest offset read. */
  readonly receipts: Record<string, number>;
  /** What the application's subscribe hook attached to the latest subscribed frame (docs/hooks.md), or null. */
  readonly data: any;
  readonly active: boolean;
  /** Resolves at the first subscribed; rejects if the subscribe fails. */
  readonly ready: Promise<Subscription>;
  readonly presence: Presence;
  publish(event: string, data?: unknown, options?: PublishOptions): Promise<{ offset: number | null }>;
  retract(offset: number): Promise<void>;
  /** Resolves once the server stored the receipt (after a reconnection if need be). */
  markRead(offset: number): Promise<void>;
  unsubscribe(): Promise<void>;
}

export interface PresenceEvents {
  join: (member: Member) => void;
  update: (member: Member) => void;
  leave: (member: Member) => void;
  count: (count: number) => void;
  /** A large room switched to count mode ("count") or back ("full"). */
  mode: (mode: "count" | "full") => void;
  sync: (members: Map<string, Member>) => void;
  change: (members: Map<string, Member>) => void;
}

export interface Presence extends Emitter<PresenceEvents> {
  /** Members present, by client id (a copy), as Doc.members. */
  readonly members: Map<string, Member>;
  readonly count: number;
  /** Sets this connection's state (a JSON object), kept across reconnects; resolves once the server took it. */
  set(state: Record<string, unknown>): Promise<void>;
}

// ---------------------------------------------------------------------------
// Documents

export interface OpenDocOptions {
  /** false: keep no unsent edits of this document in storage. */
  storage?: boolean;
  /** Local edits within this many ms of each other, of one kind (typing or deleting) and each where the last left the caret, undo as one; default 0 (each alone). */
  undoGroupMs?: number;
}

/** One UTF-16 change: apply each in turn to an editor's copy of the text. */
export interface Splice {
  index: number;
  deleteCount: number;
  text: string;
}

export interface ChangeEvent {
  /** The op as applied to the local text, in code points. */
  op: Op;
  local: boolean;
  /** rejected: a local edit the server refused for good, taken back. */
  origin: "local" | "undo" | "redo" | "remote" | "reset" | "rejected";
  /** The same change in UTF-16 indices. */
  splices: Splice[];
  /** The server version the local text is based on after the change. */
  version: number;
  /** The op's uid (a local edit: the pending op it went into). */
  uid?: string;
  /** Remote changes: the author. */
  user?: string;
  clientId?: string;
}

export interface RemoteCursor {
  clientId: string;
  user: User | null;
  ranges: Selection[];
}

export interface ResetEvent {
  /**
   * history: the server no longer has the ops since our version; rejected: it refused our op; gap: it skipped versions;
   * epoch: the document was deleted and created again (the edits pending against the old one are lost).
   */
  reason: "history" | "rejected" | "gap" | "epoch";
  error?: TandemError;
  /** The unacknowledged edits given up (they may or may not have landed). */
  lost: { op: Op; uid: string }[];
  /** The server text the lost edits apply to (the first to it, the next to its result). */
  base: string;
}

export interface DocEvents {
  change: (e: ChangeEvent) => void;
  ack: (e: { version: number; uid: string }) => void;
  synced: (e: { version: number }) => void;
  open: (e: { version: number }) => void;
  cursor: (c: RemoteCursor) => void;
  cursors: (all: Map<string, RemoteCursor>) => void;
  presence: (e: { event: string; member?: Member; members: Map<string, Member> }) => void;
  reset: (e: ResetEvent) => void;
  closed: (e: { reason: string }) => void;
  error: (err: TandemError) => void;
}

export interface Doc extends Emitter<DocEvents> {
  readonly client: Client;
  readonly id: string;
  /** The local text: the server's plus this client's pending edits. */
  readonly text: string;
  /** Its length in code points. */
  readonly length: number;
  /** The server version the local text is based on. */
  readonly version: number;
  /** The incarnation of the document `version` belongs to ("" until known); it changes when the document is deleted and created again. */
  readonly epoch: string;
  readonly loaded: boolean;
  readonly closed: boolean;
  readonly state: "synchronized" | "awaiting" | "awaitingWithBuffer";
  /** Whether some local edits are not acknowledged yet. */
  readonly pending: boolean;
  readonly canUndo: boolean;
  readonly canRedo: boolean;
  /** Resolves once the server opened the document. */
  readonly ready: Promise<Doc>;
  /** Others' cursors by client id, in local positions. */
  readonly cursors: Map<string, RemoteCursor>;
  /** Who has it open, by client id. */
  readonly members: Map<string, Member>;
  readonly comments: Comments;
  /** This client's selections, as set and moved by edits since. */
  readonly selection: Selection[] | null;
  insert(pos: number, text: string): void;
  delete(pos: number, count: number): void;
  replace(pos: number, count: number, text: string): void;
  /** An editor's change in UTF-16 indices. */
  spliceUTF16(index: number, deleteCount: number, text: string): void;
  /** Applies op (code points, on the local text) as a local edit. Throws OpError if it does not fit. */
  submit(op: Op, options?: { origin?: "local" | "undo" | "redo" }): void;
  /** Undoes this client's last edit (others' edits are kept); false if none. */
  undo(): boolean;
  redo(): boolean;
  setSelection(ranges: Selection[]): void;
  toUTF16(cp: number): number;
  fromUTF16(index: number): number;
  /** Resolves when every local edit is acknowledged. */
  synced(): Promise<void>;
  /** Closes, giving pending edits up to timeout ms (default 5000) to be acked. */
  close(options?: { timeout?: number }): Promise<void>;
}

export interface Comment {
  id: string;
  /** In local code points. */
  range: Range;
  user: User;
  text: string;
  parent: string | null;
  resolved: boolean;
  createdAt: string;
  updatedAt?: string;
  /** @deprecated Use createdAt; removed in the next release. */
  created_at: string;
  /** @deprecated Use updatedAt; removed in the next release. */
  updated_at?: string;
}

export interface CommentsEvents {
  change: (e: {
    action: "add" | "edit" | "resolve" | "reopen" | "delete" | "sync";
    comment: Comment | null;
    local: boolean;
  }) => void;
}

export interface Comments extends Emitter<CommentsEvents> {
  list(): Comment[];
  get(id: string): Comment | undefined;
  add(range: Range, text: string): Promise<Comment>;
  reply(parentId: string, text: string): Promise<Comment>;
  edit(id: string, text: string): Promise<Comment>;
  resolve(id: string): Promise<Comment>;
  reopen(id: string): Promise<Comment>;
  delete(id: string): Promise<Comment>;
}
