// common.js: what the two example pages share: the query parameters, the
// connection, the header (document, status, who is here) and the comment
// list beside the editor. The editor-specific parts are in codemirror.js
// and monaco.js.
import { connect } from "../../../web/static/tandem.js";

/**
 * Reads the page's query: server (the Tandem server, default
 * http://127.0.0.1:8080, what `make run` starts), doc (default "welcome"),
 * name and user (development mode's guest; a random guest by default,
 * remembered by this browser), token (a JWT, for a server in production
 * mode).
 */
export function params() {
  const q = new URLSearchParams(location.search);
  let user = q.get("user");
  if (!user) {
    user = localStorage.getItem("tandem-example-user");
    if (!user) {
      user = "guest-" + Math.random().toString(36).slice(2, 8);
      localStorage.setItem("tandem-example-user", user);
    }
  }
  return {
    server: q.get("server") || "http://127.0.0.1:8080",
    docId: q.get("doc") || "welcome",
    user,
    name: q.get("name") || user,
    token: q.get("token") || "",
  };
}

/** Connects and opens the document; the page shows the connection's status. */
export function open(p, openOptions = {}) {
  const client = connect({ url: p.server, user: p.user, name: p.name, token: p.token });
  const doc = client.openDoc(p.docId, openOptions);
  const status = document.querySelector("#status");
  const show = (s) => {
    status.textContent = s;
    status.dataset.status = s;
  };
  show(client.status);
  client.on("status", show);
  client.on("error", (err) => console.warn("tandem:", err.code, err.message));
  document.querySelector("#doc-name").textContent = p.docId;
  return { client, doc };
}

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "style") Object.assign(e.style, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
};

/**
 * Draws who has the document open and the comment threads, and wires the
 * "Comment" button. binding is the editor's Tandem binding; select(from,
 * to) selects code points [from, to) in the editor.
 */
export function sidebar(doc, binding, select) {
  const people = document.querySelector("#people");
  const list = document.querySelector("#comments");
  const drawPeople = () => {
    const seen = new Map();
    for (const m of doc.members.values()) seen.set(m.user.id, m.user);
    people.replaceChildren(
      ...[...seen.values()].map((u) => el("span", { class: "person", style: { background: u.color } }, u.name)),
    );
  };
  const drawComments = () => {
    const threads = doc.comments.list().filter((c) => !c.parent && !c.resolved);
    list.replaceChildren(
      ...threads.map((c) =>
        el(
          "article",
          { class: "thread", "data-comment-id": c.id, onclick: () => select(c.range.from, c.range.to) },
          el("b", {}, c.user?.name ?? "someone"),
          " on ",
          el("q", {}, doc.text.slice(doc.toUTF16(c.range.from), doc.toUTF16(c.range.to)).slice(0, 40)),
          ": ",
          c.text,
        ),
      ),
    );
    if (threads.length === 0) list.append(el("p", { class: "muted" }, "No comments. Select words and press Comment."));
  };
  doc.on("presence", drawPeople);
  doc.on("open", drawPeople);
  doc.comments.on("change", drawComments);
  doc.on("change", () => queueMicrotask(drawComments));
  drawComments();
  document.querySelector("#comment").addEventListener("click", async () => {
    const text = prompt("Comment on the selected text:");
    if (text) await binding.addComment(text);
  });
}

/** Marks the thread card of comment c for a moment (a mark was clicked). */
export function flashThread(c) {
  const card = document.querySelector(`#comments [data-comment-id="${CSS.escape(c.id)}"]`);
  if (!card) return;
  card.classList.add("flash");
  card.scrollIntoView({ block: "nearest" });
  setTimeout(() => card.classList.remove("flash"), 1200);
}
