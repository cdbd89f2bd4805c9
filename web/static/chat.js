// chat.js: a document's chat sidebar on channel chat:<doc>. The history is
// the channel's (the server keeps the last 1,000 messages), recovered from
// offset 0 on the first subscribe and from the last seen offset after a
// reconnect. Typing shows through presence state ({typing: true}); reading
// sends receipts, shown as "Seen by" under the last message each reader saw;
// @names are highlighted, and the server notifies those users.

import { h, clock, colorOf, explain, withMentions } from "./util.js";

const TYPING_IDLE_MS = 4000;

export class ChatPanel {
  /**
   * @param client the tandem.js Client
   * @param docId the document the chat belongs to
   * @param me {id, name, color}
   * @param people a Map user id → {id, name, color} shared with the page (names for receipts)
   */
  constructor(client, docId, me, people) {
    this.client = client;
    this.me = me;
    this.people = people;
    this.messages = new Map(); // offset → {msg, el}
    this.lastMarked = 0;
    this.typing = false;
    this.typingTimer = null;

    this.list = h("ol", { class: "messages", id: "chat-messages", "aria-label": "Messages", "aria-live": "polite" });
    this.typingEl = h("div", { class: "typing", id: "chat-typing", "aria-live": "polite" });
    this.input = h("textarea", {
      id: "chat-input",
      rows: "2",
      placeholder: "Message… (@name to mention; Enter sends)",
      "aria-label": "Chat message",
    });
    this.error = h("p", { class: "form-error", role: "alert", id: "chat-error" });
    this.send = h("button", { type: "submit", class: "primary", id: "chat-send" }, "Send");
    this.empty = h("li", { class: "muted empty-note" }, "No messages yet. Say hello!");
    this.list.append(this.empty);
    const form = h(
      "form",
      { class: "chat-form", onsubmit: (e) => (e.preventDefault(), this.submit()) },
      h("label", { for: "chat-input", class: "sr-only" }, "Message"),
      this.input,
      h("div", { class: "row" }, this.error, this.send),
    );
    this.el = h(
      "aside",
      { class: "chat", id: "chat", "aria-label": "Chat" },
      h("div", { class: "col-head" }, h("h2", {}, "Chat")),
      this.list,
      this.typingEl,
      form,
    );

    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => this.setTyping(this.input.value.trim() !== ""));

    this.sub = client.subscribe(`chat:${docId}`, (m) => this.onMessage(m), { since: { offset: 0, epoch: "" } });
    this.sub.on("receipt", () => this.renderSeen());
    this.live = false; // past the history loaded by the first subscribe
    this.onRestored = () => {};
    this.unread = 0; // messages from others that came while the panel was hidden
    this.onUnread = () => {};
    this.sub.on("subscribed", () => {
      this.live = true;
      this.renderSeen();
      this.markRead();
    });
    this.sub.on("retracted", (e) => this.onRetracted(e.offset));
    this.sub.on("error", (err) => (this.error.textContent = explain(err, "this chat")));
    this.sub.presence.on("change", (members) => this.renderTyping(members));
    this.onVisible = () => this.markRead();
    document.addEventListener("visibilitychange", this.onVisible);
  }

  destroy() {
    clearTimeout(this.typingTimer);
    document.removeEventListener("visibilitychange", this.onVisible);
    this.sub.unsubscribe();
  }

  /** shown is whether the panel is on screen (it is hidden on narrow windows until opened). */
  get shown() {
    return this.el.isConnected && this.el.offsetParent !== null;
  }

  async submit() {
    const text = this.input.value.trim();
    if (!text) return;
    this.send.disabled = true;
    this.error.textContent = "";
    try {
      await this.sub.publish("message", { text, name: this.me.name, color: this.me.color });
      this.input.value = "";
      this.setTyping(false);
    } catch (err) {
      this.error.textContent = explain(err, "this chat");
    } finally {
      this.send.disabled = false;
      this.input.focus();
    }
  }

  setTyping(on) {
    clearTimeout(this.typingTimer);
    if (on) this.typingTimer = setTimeout(() => this.setTyping(false), TYPING_IDLE_MS);
    if (on === this.typing) return;
    this.typing = on;
    this.sub.presence.set({ typing: on }).catch(() => {}); // a refusal is not worth a word here
  }

  renderTyping(members) {
    const names = new Set();
    for (const m of members.values()) {
      if (m.user) this.people.set(m.user.id, m.user);
      if (m.clientId === this.client.clientId || m.user?.id === this.me.id) continue;
      if (m.state?.typing) names.add(m.user?.name ?? m.user?.id ?? "someone");
    }
    const list = [...names];
    this.typingEl.textContent =
      list.length === 0 ? "" : list.length === 1 ? `${list[0]} is typing…` : list.length === 2 ? `${list[0]} and ${list[1]} are typing…` : `${list.length} people are typing…`;
    this.typingEl.dataset.users = list.join(",");
  }

  onMessage(m) {
    if (m.offset == null) return; // ephemeral: nothing of ours uses them
    if (m.event === "restored") {
      // A history restore, announced to the document's other users (not
      // when loading the chat's history).
      if (this.live && m.from?.user !== this.me.id) this.onRestored(m);
      return;
    }
    if (this.messages.has(m.offset)) return;
    const data = m.data ?? {};
    const uid = m.from?.user ?? "";
    const user = { id: uid, name: data.name ?? this.people.get(uid)?.name ?? uid, color: data.color ?? colorOf(uid) };
    if (uid && data.name) this.people.set(uid, { ...user });
    const mine = uid === this.me.id;
    if (this.live && !mine && !this.shown) {
      this.unread++;
      this.onUnread(this.unread);
    }
    const isMe = (n) => eqi(n, this.me.name) || eqi(n, this.me.id);
    const text = m.retracted ? h("p", { class: "msg-text muted" }, "(message deleted)") : h("p", { class: "msg-text" }, withMentions(String(data.text ?? ""), isMe));
    const seen = h("div", { class: "seen", hidden: true });
    const el = h(
      "li",
      { class: mine ? "msg mine" : "msg", "data-offset": String(m.offset), "data-user": uid },
      h(
        "div",
        { class: "msg-head" },
        h("span", { class: "dot", style: { background: user.color } }),
        h("strong", {}, mine ? `${user.name} (you)` : user.name),
        " ",
        h("time", { datetime: m.ts }, clock(m.ts)),
      ),
      text,
      seen,
    );
    this.messages.set(m.offset, { msg: m, el, seen, user: uid });
    this.empty.remove();
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    // Messages come in offset order, so appending keeps the list sorted.
    this.list.append(el);
    if (atBottom || mine) this.list.scrollTop = this.list.scrollHeight;
    this.renderSeen();
    this.markRead();
  }

  onRetracted(offset) {
    const it = this.messages.get(offset);
    if (it) it.el.querySelector(".msg-text").replaceWith(h("p", { class: "msg-text muted" }, "(message deleted)"));
  }

  // markRead sends a receipt for the newest message once it is on screen.
  markRead() {
    if (document.visibilityState !== "visible" || !this.shown) return;
    let newest = 0;
    for (const o of this.messages.keys()) newest = Math.max(newest, o);
    if (newest > this.lastMarked) {
      this.lastMarked = newest;
      this.sub.markRead(newest).catch(() => {});
    }
  }

  // renderSeen puts each reader's name under the last message they read
  // (not under their own messages, nor for oneself).
  renderSeen() {
    const offsets = [...this.messages.keys()].sort((a, b) => a - b);
    const at = new Map(); // offset → [names]
    for (const [user, read] of Object.entries(this.sub.receipts ?? {})) {
      if (user === this.me.id) continue;
      let target = null;
      for (const o of offsets) {
        if (o > read) break;
        if (this.messages.get(o).user !== user) target = o;
      }
      if (target == null) continue;
      if (!at.has(target)) at.set(target, []);
      at.get(target).push(this.people.get(user)?.name ?? user);
    }
    // A "Seen by" line appearing under the newest message must not be cut
    // off: a list scrolled to the bottom stays at the bottom.
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    for (const [o, it] of this.messages) {
      const names = at.get(o);
      it.seen.hidden = !names;
      it.seen.textContent = names ? `Seen by ${names.sort().join(", ")}` : "";
    }
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }
}

function eqi(a, b) {
  return String(a).toLowerCase() === String(b).toLowerCase();
}
