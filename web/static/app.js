// app.js: the Tandem demo app (index.html). Routes: "#/" lists the
// documents, "#/doc/<id>" opens one with its editor, comments, history and
// chat. One tandem.js client serves the page; it reconnects on its own, and
// edits made while it is away are kept (in localStorage too) and sent when
// it is back.

import { ChatPanel } from "./chat.js";
import { CommentsPanel } from "./comments.js";
import { Editor } from "./editor.js";
import { HistoryPanel, restoreVersion } from "./history.js";
import { apiLockedMessage, detectMode, namePicker, needTokenMessage, openClient, savedIdentity, tokenSource } from "./identity.js";
import { api, avatar, docPath, explain, h, setChildren, toast, when } from "./util.js";

const main = document.getElementById("main");
const statusEl = document.getElementById("conn-status");
const meEl = document.getElementById("me");

const app = {
  client: null,
  ident: null,
  me: { id: "", name: "", color: "#888" }, // filled from the server's connected frame
  people: new Map(), // user id → {id, name, color}: names for receipts, history, cursors
  view: null, // {destroy()}
  mentions: null,
  closing: new Map(), // doc id → promise of its close, awaited before opening it again
};
globalThis.tandemApp = app; // for the browser tests and the curious

// ---------------------------------------------------------------------------
// Start

async function boot() {
  const token = tokenSource();
  if (token) return start({ token });
  const mode = await detectMode();
  if (mode === "prod") {
    main.replaceChildren(needTokenMessage());
    setStatus("disconnected", "Sign-in needed");
    return;
  }
  if (mode === "dev-locked") {
    main.replaceChildren(apiLockedMessage());
    setStatus("disconnected", "HTTP API locked");
    return;
  }
  if (mode === "unreachable") {
    setStatus("reconnecting", "Server unreachable");
    const retry = h("button", { type: "button", class: "primary", onclick: () => boot() }, "Retry now");
    main.replaceChildren(
      h("div", { class: "card error-card", role: "alert", id: "unreachable" }, h("h1", {}, "Server unreachable"), h("p", {}, explain({ code: "unreachable" })), retry),
    );
    clearTimeout(app.bootRetry);
    app.bootRetry = setTimeout(boot, 3000);
    return;
  }
  clearTimeout(app.bootRetry);
  let ident = savedIdentity();
  if (!ident) {
    setStatus("disconnected", "Not connected");
    ident = await namePicker(main);
  }
  start(ident);
}

function start(ident) {
  app.ident = ident;
  if (!ident.token) {
    Object.assign(app.me, { id: ident.id, name: ident.name, color: ident.color });
    renderMe();
  }
  const client = openClient(ident);
  app.client = client;
  client.on("status", (status, detail) => onStatus(status, detail));
  client.on("connected", ({ user }) => {
    Object.assign(app.me, user);
    app.people.set(user.id, { ...user });
    renderMe();
    subscribeMentions();
  });
  client.on("error", (err) => {
    if (err.code === "unauthorized") {
      main.replaceChildren(h("div", { class: "card error-card", role: "alert" }, h("h1", {}, "Not signed in"), h("p", {}, explain(err))));
    }
  });
  addEventListener("hashchange", route);
  // A link to the page already shown (say "Documents" on the list) reloads it.
  document.addEventListener("click", (e) => {
    const a = e.target.closest?.('a[href^="#"]');
    if (a?.getAttribute("href") === "#main") {
      e.preventDefault(); // the skip link: the hash is the route, so focus instead
      main.focus();
      return;
    }
    if (a && !e.defaultPrevented && a.getAttribute("href") === (location.hash || "#/")) {
      e.preventDefault();
      route();
    }
  });
  route();
}

// ---------------------------------------------------------------------------
// Header: connection status and identity

function setStatus(status, text, extra = null) {
  statusEl.dataset.status = status;
  setChildren(statusEl, h("span", { class: "status-dot", "aria-hidden": "true" }), h("span", { class: "status-text" }, text), extra);
}

function onStatus(status, detail) {
  switch (status) {
    case "connected":
      setStatus("connected", "Connected");
      break;
    case "connecting":
      setStatus("connecting", detail.attempt ? `Can't reach the server — retrying (attempt ${detail.attempt})…` : "Connecting…");
      break;
    case "reconnecting": {
      const secs = detail.delay != null ? Math.max(1, Math.round(detail.delay / 1000)) : null;
      setStatus(
        "reconnecting",
        `Reconnecting${detail.attempt ? ` (attempt ${detail.attempt}${secs ? `, next in ${secs} s` : ""})` : ""}…`,
        h("button", { type: "button", class: "link", id: "retry-now", onclick: () => app.client.reconnect() }, "Retry now"),
      );
      break;
    }
    default:
      setStatus("disconnected", "Disconnected");
  }
  document.dispatchEvent(new CustomEvent("tandem-status", { detail: status }));
}

function renderMe() {
  const change = app.ident?.token
    ? null
    : h(
        "button",
        {
          type: "button",
          class: "link",
          id: "change-name",
          onclick: async () => {
            leaveView();
            const ident = await namePicker(main, app.ident);
            if (ident.id === app.ident.id && ident.name === app.ident.name) return route();
            location.reload(); // a new identity needs a new connection
          },
        },
        "Change",
      );
  // Desktop notifications for @mentions while the tab is in the background.
  const bell =
    typeof Notification !== "undefined" && Notification.permission === "default"
      ? h(
          "button",
          {
            type: "button",
            class: "link",
            id: "enable-notifications",
            title: "Show a desktop notification when someone mentions you while this tab is in the background",
            onclick: () => Notification.requestPermission().then(renderMe, renderMe),
          },
          "Enable notifications",
        )
      : null;
  setChildren(meEl, avatar(app.me, " (you)"), h("span", { class: "me-name" }, app.me.name || "…"), change, bell);
}

// ---------------------------------------------------------------------------
// @mention notifications: user:<my id>, "mention" events.

function subscribeMentions() {
  if (app.mentions || !app.me.id) return;
  const key = `tandem-demo:mentions:${app.me.id}`;
  let since;
  try {
    since = JSON.parse(localStorage.getItem(key) ?? "null") ?? undefined;
  } catch {
    since = undefined;
  }
  const sub = app.client.subscribe(
    `user:${app.me.id}`,
    (m) => {
      try {
        localStorage.setItem(key, JSON.stringify({ offset: sub.offset, epoch: sub.epoch }));
      } catch {
        // Storage denied: missed mentions are not recovered next time.
      }
      if (m.event === "mention" && !m.retracted) notifyMention(m.data ?? {});
    },
    since ? { since } : {},
  );
  sub.on("subscribed", () => {
    try {
      localStorage.setItem(key, JSON.stringify({ offset: sub.offset, epoch: sub.epoch }));
    } catch {
      // As above.
    }
  });
  app.mentions = sub;
}

function notifyMention(d) {
  const from = d.from?.name ?? d.from?.id ?? "Someone";
  const [ns, ...rest] = String(d.channel ?? "").split(":");
  const docId = rest.join(":");
  const where = ns === "chat" ? `in the chat of ${docId}` : ns === "doc" ? `in a comment on ${docId}` : "";
  const open =
    docId && (ns === "chat" || ns === "doc") && currentDoc() !== docId
      ? h("a", { class: "button", href: `#/doc/${encodeURIComponent(docId)}` }, "Open")
      : null;
  toast(h("span", {}, h("strong", {}, from), ` mentioned you ${where}: “${d.text ?? ""}”`), { kind: "mention", action: open });
  if (typeof Notification !== "undefined" && Notification.permission === "granted" && document.visibilityState !== "visible") {
    new Notification(`${from} mentioned you`, { body: d.text ?? "", tag: `tandem-${d.channel}-${d.offset}` });
  }
}

// ---------------------------------------------------------------------------
// Routing

function currentDoc() {
  const m = /^#\/doc\/(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function leaveView() {
  app.view?.destroy();
  app.view = null;
}

function route() {
  leaveView();
  const id = currentDoc();
  if (id) docView(id);
  else listView();
  main.focus({ preventScroll: true });
}

// ---------------------------------------------------------------------------
// The documents list

function toDocId(name) {
  return name
    .trim()
    .replace(/\s+/g, "-")
    .replace(/[^\p{L}\p{N}_.@#=\-]/gu, "");
}

function listView() {
  document.title = "Documents · Tandem";
  const list = h("ul", { class: "doc-list", id: "doc-list", "aria-busy": "true" });
  const input = h("input", { id: "new-doc-id", name: "id", placeholder: "e.g. meeting-notes", autocomplete: "off", maxlength: "200" });
  const error = h("p", { class: "form-error", role: "alert", id: "create-error" });
  const form = h(
    "form",
    {
      id: "create-form",
      class: "create-form",
      onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = "";
        const id = toDocId(input.value);
        if (input.value.trim() && !id) {
          error.textContent = "Use letters, digits and - _ . in the name.";
          return;
        }
        try {
          const r = await api("POST", "/api/docs", { id, content: "" });
          location.hash = `#/doc/${encodeURIComponent(r.id)}`;
        } catch (err) {
          if (err.code === "conflict") {
            error.replaceChildren(`“${id}” already exists. `, h("a", { href: `#/doc/${encodeURIComponent(id)}` }, "Open it"));
          } else error.textContent = explain(err, `“${id}”`);
        }
      },
    },
    h("label", { for: "new-doc-id" }, "New document"),
    h("div", { class: "row" }, input, h("button", { type: "submit", class: "primary", id: "create-doc" }, "Create")),
    h("p", { class: "hint muted" }, "Leave the name empty for a random one. Letters, digits and - _ . are allowed."),
    error,
  );
  const section = h(
    "section",
    { class: "docs-view", "aria-labelledby": "docs-title" },
    h("div", { class: "card" }, h("h1", { id: "docs-title" }, "Documents"), form, h("h2", { class: "sub" }, "All documents"), list),
  );
  main.replaceChildren(section);

  let alive = true;
  const load = async () => {
    try {
      const r = await api("GET", "/api/docs");
      if (!alive) return;
      const docs = (r.docs ?? []).sort((a, b) => String(b.created).localeCompare(String(a.created)));
      list.replaceChildren(
        ...(docs.length
          ? docs.map((d) =>
              h(
                "li",
                { "data-doc": d.id },
                h("a", { href: `#/doc/${encodeURIComponent(d.id)}`, class: "doc-link" }, d.title || d.id),
                h("span", { class: "muted" }, ` version ${d.version} · created ${when(d.created)}`),
              ),
            )
          : [h("li", { class: "muted empty-note" }, "No documents yet: create the first one above.")]),
      );
    } catch (err) {
      if (!alive) return;
      list.replaceChildren(h("li", { class: "form-error", role: "alert" }, explain(err, "the document list")));
    }
    list.setAttribute("aria-busy", "false");
  };
  load();
  // Created and deleted documents show up live.
  let timer = null;
  const sub = app.client.getSubscription("system:docs") ?? app.client.subscribe("system:docs");
  const off = sub.on("message", () => {
    clearTimeout(timer);
    timer = setTimeout(load, 150);
  });
  const offStatus = () => document.removeEventListener("tandem-status", onStatusChange);
  const onStatusChange = (e) => e.detail === "connected" && load();
  document.addEventListener("tandem-status", onStatusChange);
  app.view = {
    destroy() {
      alive = false;
      off();
      offStatus();
      clearTimeout(timer);
    },
  };
  input.focus();
}

// ---------------------------------------------------------------------------
// A document

async function docView(id) {
  document.title = `${id} · Tandem`;
  const token = {};
  app.view = { destroy: () => (token.dead = true) };
  main.replaceChildren(h("p", { class: "muted loading" }, `Opening ${id}…`));
  try {
    await api("GET", docPath(id));
  } catch (err) {
    if (token.dead) return;
    if (err.code === "not_found" || err.code === "forbidden" || err.code === "bad_request") return docProblem(id, err);
    // Unreachable: open anyway; edits kept from an earlier visit show, and
    // the client connects when it can.
  }
  await app.closing.get(id);
  if (token.dead) return;
  openDocView(id);
}

function docProblem(id, err) {
  const create =
    err.code === "not_found"
      ? h(
          "button",
          {
            type: "button",
            class: "primary",
            id: "create-missing",
            onclick: async () => {
              try {
                await api("POST", "/api/docs", { id, content: "" });
                route();
              } catch (e) {
                msg.textContent = explain(e, `“${id}”`);
              }
            },
          },
          `Create “${id}”`,
        )
      : null;
  const msg = h("p", {}, explain(err, `the document “${id}”`));
  main.replaceChildren(
    h(
      "div",
      { class: "card error-card", role: "alert", id: "doc-error", "data-code": err.code },
      h("h1", {}, err.code === "not_found" ? "Document not found" : err.code === "forbidden" ? "No access" : "Can't open this document"),
      msg,
      h("div", { class: "row" }, create, h("a", { href: "#/", class: "button" }, "Back to documents")),
    ),
  );
}

function openDocView(id) {
  const client = app.client;
  const doc = client.openDoc(id, { undoGroupMs: 800 });
  const editor = new Editor(doc, { label: `Text of ${id}` });
  const comments = new CommentsPanel(doc, editor, app.me);
  const chat = new ChatPanel(client, id, app.me, app.people);
  let history = null;

  const btn = (label, attrs) => h("button", { type: "button", onmousedown: (e) => e.preventDefault(), ...attrs }, label);
  const undoBtn = btn("Undo", { id: "undo-btn", "aria-keyshortcuts": "Control+Z", title: "Undo your last edit (Ctrl+Z)", disabled: true, onclick: () => editor.undo() });
  const redoBtn = btn("Redo", { id: "redo-btn", "aria-keyshortcuts": "Control+Shift+Z", title: "Redo (Ctrl+Shift+Z)", disabled: true, onclick: () => editor.redo() });
  const commentBtn = btn("Comment", {
    id: "comment-btn",
    "aria-keyshortcuts": "Control+Alt+M",
    title: "Comment on the selected text (Ctrl+Alt+M)",
    disabled: true,
    onclick: () => comments.startDraft(),
  });
  const historyBtn = h("button", { type: "button", id: "history-btn", "aria-pressed": "false", onclick: () => toggleHistory() }, "History");
  const chatBtn = h("button", { type: "button", id: "chat-btn", "aria-pressed": "true", "aria-controls": "chat", onclick: () => toggleChat() }, "Chat");
  const avatars = h("div", { class: "avatars", id: "avatars", role: "group", "aria-label": "Who is here" });
  // The visible save state changes on every keystroke (saving, saved,
  // the version): it is no live region. Screen readers hear only the
  // changes that matter, from #save-announce: offline, and back.
  const saveState = h("span", { class: "save-state", id: "save-state" });
  const saveAnnounce = h("span", { class: "sr-only", id: "save-announce", role: "status" });
  let announced = null;
  const notice = h("div", { class: "notice", id: "doc-notice", role: "alert", hidden: true });

  const editorCol = h(
    "div",
    { class: "editor-col" },
    h("div", { class: "col-head" }, saveState, saveAnnounce),
    h("div", { class: "editor-frame" }, editor.root),
  );
  const work = h("div", { class: "doc-work" }, editorCol, comments.el);
  const grid = h("div", { class: "doc-grid" }, work, chat.el);
  const view = h(
    "section",
    { class: "doc-view", "aria-label": `Document ${id}` },
    h(
      "div",
      { class: "doc-toolbar" },
      h("a", { href: "#/", class: "back" }, "← Documents"),
      h("h1", { class: "doc-title", id: "doc-title" }, id),
      avatars,
      h("div", { class: "tools", role: "toolbar", "aria-label": "Document tools" }, undoBtn, redoBtn, commentBtn, historyBtn, chatBtn),
    ),
    notice,
    grid,
  );
  main.replaceChildren(view);

  function toggleHistory(force) {
    const on = force ?? !history;
    if (!on && history) {
      history.destroy();
      history.el.replaceWith(work);
      history = null;
      editor.schedule();
      editor.textarea.focus();
    } else if (on && !history) {
      history = new HistoryPanel(doc, app.people, { onClose: () => toggleHistory(false), onRestore: (v) => restore(v) });
      work.replaceWith(history.el);
      history.slider.focus();
    }
    historyBtn.setAttribute("aria-pressed", String(!!history));
    for (const b of [undoBtn, redoBtn, commentBtn]) b.hidden = !!history;
  }

  // restore makes version v current as this user's edit, and tells the
  // document's other users (on its chat channel, so that one who is
  // offline meanwhile learns it when back).
  async function restore(v) {
    const { before, after } = await restoreVersion(doc, v);
    chat.sub.publish("restored", { version: v, before, after, name: app.me.name }).catch(() => {});
    return after;
  }
  chat.onRestored = (m) => {
    const d = m.data ?? {};
    const who = d.name ?? app.people.get(m.from?.user)?.name ?? m.from?.user ?? "Someone";
    const undo = h(
      "button",
      {
        type: "button",
        class: "restore-undo",
        onclick: async () => {
          el.remove();
          try {
            await restore(d.before);
          } catch (err) {
            toast(explain(err, "this document"), { kind: "error" });
          }
        },
      },
      "Undo",
    );
    const el = toast(`${who} restored version ${d.version}.`, { action: undo, timeout: 15000 });
    el.dataset.kind = "restored";
  };

  // Messages that come while the chat is closed show on its button.
  chat.onUnread = (n) => {
    chatBtn.dataset.unread = String(n);
    chatBtn.setAttribute("aria-label", `Chat, ${n} unread`);
  };
  const clearUnread = () => {
    chat.unread = 0;
    delete chatBtn.dataset.unread;
    chatBtn.removeAttribute("aria-label");
  };

  function toggleChat() {
    const on = chat.el.hidden;
    if (!on) {
      // On a narrow window the open chat sits below the document: the
      // button brings it into view instead of hiding what was not seen.
      const r = chat.el.getBoundingClientRect();
      if (r.top >= innerHeight || r.bottom <= 0) {
        chat.el.scrollIntoView({ block: "start" });
        clearUnread();
        chat.markRead();
        chat.input.focus({ preventScroll: true });
        return;
      }
    }
    chat.el.hidden = !on;
    grid.classList.toggle("no-chat", !on);
    chatBtn.setAttribute("aria-pressed", String(on));
    editor.schedule();
    if (on) {
      clearUnread();
      chat.markRead();
      chat.input.focus();
    }
  }

  const updateTools = () => {
    undoBtn.disabled = !doc.loaded || !doc.canUndo;
    redoBtn.disabled = !doc.loaded || !doc.canRedo;
    const ta = editor.textarea;
    commentBtn.disabled = !doc.loaded || ta.selectionStart === ta.selectionEnd;
  };
  const updateSave = () => {
    const online = client.status === "connected";
    view.dataset.online = String(online); // others' carets and avatars dim while we are cut off
    let state;
    let text;
    if (!doc.loaded) [state, text] = ["loading", online ? "Loading…" : "Waiting for the server…"];
    else if (doc.pending && !online) [state, text] = ["offline", "Offline — your edits are kept and will be sent when the connection is back"];
    else if (doc.pending) [state, text] = ["saving", "Saving…"];
    else if (!online) [state, text] = ["offline", "Offline — you can keep typing"];
    else [state, text] = ["saved", `All changes saved · version ${doc.version}`];
    saveState.dataset.state = state;
    saveState.textContent = text;
    const group = state === "offline" ? "offline" : state === "loading" ? "loading" : "online";
    if (group !== announced) {
      if (group === "offline") saveAnnounce.textContent = text;
      else if (group === "online" && announced === "offline") saveAnnounce.textContent = "Back online: your changes are being saved.";
      announced = group;
    }
  };
  const renderAvatars = () => {
    const users = new Map();
    for (const m of doc.members.values()) {
      if (!m.user) continue;
      app.people.set(m.user.id, m.user);
      const u = users.get(m.user.id) ?? { user: m.user, n: 0 };
      u.n++;
      users.set(m.user.id, u);
    }
    if (!users.has(app.me.id) && app.me.id) users.set(app.me.id, { user: app.me, n: 1 });
    const list = [...users.values()].sort((a, b) => (a.user.id === app.me.id ? -1 : b.user.id === app.me.id ? 1 : a.user.name.localeCompare(b.user.name)));
    avatars.replaceChildren(
      ...list.slice(0, 8).map((u) => avatar(u.user, u.user.id === app.me.id ? " (you)" : u.n > 1 ? ` (${u.n} windows)` : "")),
      ...(list.length > 8 ? [h("span", { class: "more" }, `+${list.length - 8}`)] : []),
    );
    avatars.dataset.count = String(list.length);
  };
  const showNotice = (text) => {
    notice.textContent = text;
    notice.hidden = !text;
  };

  const offs = [
    doc.on("change", () => (updateTools(), updateSave())),
    doc.on("ack", updateSave),
    doc.on("synced", updateSave),
    doc.on("open", () => (updateTools(), updateSave(), showNotice(""))),
    doc.on("presence", renderAvatars),
    doc.on("reset", (e) => {
      const n = e.lost?.length ?? 0;
      toast(n ? `The document was reloaded from the server; ${n} unsent edit${n === 1 ? "" : "s"} could not be applied.` : "The document was reloaded from the server.", {
        kind: n ? "error" : "info",
      });
    }),
    doc.on("error", (err) => {
      if (err.ops && err.code === "too_large") {
        // An edit the server refused for good; the client took it back.
        const max = client.limits.maxDocLen;
        const why = /document would have/.test(err.message) && max ? `the document would be longer than the ${max.toLocaleString("en")} characters this server allows` : "it is larger than this server allows";
        toast(`Your edit was not saved and has been undone: ${why}.`, { kind: "error" }).dataset.code = err.code;
      } else if (err.code === "forbidden" && doc.loaded) {
        showNotice("You can read this document but not edit it: your access does not include writing.");
        editor.textarea.readOnly = true;
      } else if (err.code === "forbidden") showNotice(explain(err, "this document"));
      else if (err.code === "rate_limited") showNotice(explain(err));
      else if (err.code !== "disconnected") toast(explain(err, "this document"), { kind: "error" });
    }),
    doc.on("closed", ({ reason }) => {
      if (reason === "deleted") showNotice("This document was deleted. Your copy stays on screen but can no longer be saved.");
      else if (reason === "forbidden") showNotice(explain({ code: "forbidden" }, "this document"));
      else if (reason === "not_found") showNotice(explain({ code: "not_found" }, "this document"));
      editor.textarea.readOnly = true;
    }),
    client.on("status", () => updateSave()),
  ];
  doc.ready.catch((err) => {
    if (err.code === "not_found" || err.code === "forbidden") docProblem(id, err);
  });
  const onSel = () => {
    if (document.activeElement === editor.textarea) updateTools();
  };
  document.addEventListener("selectionchange", onSel);
  editor.textarea.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.altKey && e.key.toLowerCase() === "m") {
      e.preventDefault();
      comments.startDraft();
    }
  });
  updateTools();
  updateSave();
  renderAvatars();
  if (doc.loaded) editor.textarea.focus();
  else doc.ready.then(() => editor.textarea.focus(), () => {});

  app.view = {
    doc,
    editor,
    comments,
    chat,
    destroy() {
      for (const off of offs) off();
      document.removeEventListener("selectionchange", onSel);
      history?.destroy();
      chat.destroy();
      comments.destroy();
      editor.destroy();
      const closing = doc.close({ timeout: 3000 }).finally(() => app.closing.delete(id));
      app.closing.set(id, closing);
    },
  };
}

boot();
