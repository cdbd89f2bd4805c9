// Helpers for the client tests: they run against a real server whose URL is
// in $TANDEM_URL (scripts/test-js.sh starts one), sometimes through a TCP
// proxy the test can take down, to play a flaky network or a server that is
// away.
import net from "node:net";
import { after } from "node:test";
import { connect } from "../../../web/static/tandem.js";

/** The server under test; tests skip when it is not set. */
export const SERVER = process.env.TANDEM_URL ?? "";
export const skip = SERVER ? false : "TANDEM_URL is not set (run scripts/test-js.sh)";

const clients = new Set();
const proxies = new Set();
after(() => {
  for (const c of clients) c.close();
  for (const p of proxies) p.close();
});

let seq = 0;
/** Returns a name no other test of this run uses. */
export function uniq(prefix) {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
}

/** Connects a client with short backoff, closed when the file's tests end. */
export function newClient(options = {}) {
  const c = connect({ url: SERVER, storage: null, backoff: { min: 20, max: 200 }, ...options });
  clients.add(c);
  return c;
}

/** Waits until cond() is truthy, polling; fails after timeout ms. */
export async function waitFor(cond, what = "condition", timeout = 10000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Opens a document on a fresh client and returns {text, version}. */
export async function serverText(id) {
  const c = newClient();
  try {
    const d = c.openDoc(id);
    await d.ready;
    return { text: d.text, version: d.version };
  } finally {
    c.close();
  }
}

/**
 * Counts the ops with uid in a document's log, by opening it at version 0 on
 * a raw connection and scanning opened.ops.
 */
export async function countUid(id, uid) {
  const url = new URL(SERVER);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.pathname = "/ws";
  const ws = new WebSocket(url);
  const frames = [];
  let wake = () => {};
  ws.onmessage = (e) => {
    for (const line of String(e.data).split("\n")) if (line) frames.push(JSON.parse(line));
    wake();
  };
  await new Promise((res, rej) => {
    ws.onopen = res;
    ws.onerror = rej;
  });
  const reply = async (id) => {
    for (;;) {
      const f = frames.find((x) => x.id === id);
      if (f) return f;
      await new Promise((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
  };
  ws.send(JSON.stringify({ id: 1, type: "connect", token: "" }));
  await reply(1);
  ws.send(JSON.stringify({ id: 2, type: "open", doc: id, version: 0 }));
  const opened = await reply(2);
  ws.close();
  if (opened.type !== "opened") throw new Error(`open ${id}: ${JSON.stringify(opened)}`);
  return opened.ops.filter((o) => o.uid === uid).length;
}

/** An in-memory Web Storage stand-in. */
export function memStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => void m.set(k, String(v)),
    removeItem: (k) => void m.delete(k),
    keys: () => [...m.keys()],
    map: m,
  };
}

/**
 * Starts a TCP proxy to the server. down() drops every connection and
 * refuses new ones (the server is "away"); up() accepts again; drop() cuts
 * the current connections only; hold() stops forwarding what clients send
 * (it is buffered) while the server's frames still flow; release() sends
 * what was held.
 */
export async function startProxy() {
  const target = new URL(SERVER);
  const pairs = new Set();
  let held = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    const pair = { client, upstream, queue: [] };
    pairs.add(pair);
    client.on("data", (chunk) => {
      if (held) pair.queue.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  let listening = true;
  const p = {
    url: `http://127.0.0.1:${port}`,
    drop() {
      for (const { client, upstream } of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
    },
    async down() {
      if (listening) {
        listening = false;
        await new Promise((r) => {
          server.close(() => r());
          p.drop();
        });
      }
      p.drop();
    },
    async up() {
      if (!listening) {
        await new Promise((r, j) => {
          server.once("error", j);
          server.listen(port, "127.0.0.1", r);
        });
        listening = true;
      }
    },
    hold() {
      held = true;
    },
    release() {
      held = false;
      for (const pair of pairs) {
        for (const chunk of pair.queue) pair.upstream.write(chunk);
        pair.queue = [];
      }
    },
    close() {
      p.drop();
      if (listening) server.close();
      listening = false;
    },
  };
  proxies.add(p);
  return p;
}
