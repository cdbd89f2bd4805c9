// comments.js: comment threads in a margin beside the editor. Each thread
// sits level with the start of its text (the editor reports where that is
// after every render) and follows it as anyone edits; threads that would
// overlap are pushed down. Select text and press "Comment" (or Ctrl+Alt+M)
// to start one; threads have replies, edit and delete of one's own
// comments, and resolve / reopen.

import { transformRange } from "./tandem.js";
import { h, clock, colorOf, explain, withMentions } from "./util.js";

const narrow = matchMedia("(max-width: 900px)");

export class CommentsPanel {
  /**
   * @param doc the open Doc
   * @param editor its Editor (for the selection and highlights)
   * @param me the current user {id, name}
   */
  constructor(doc, editor, me) {
    this.doc = doc;
    this.editor = editor;
    this.me = me;
    this.cards = new Map(); // thread id → card
    this.draft = null; // {range, el, input, error}
    this.active = null;
    this.showResolved = true;
    this.tops = new Map();

    const toggle = h("input", {
      type: "checkbox",
      id: "show-resolved",
      checked: true,
      onchange: () => {
        this.showResolved = toggle.checked;
        this.refresh();
      },
    });
    this.count = h("span", { class: "muted", id: "comment-count" });
    this.threads = h("div", { class: "threads" });
    this.el = h(
      "aside",
      { class: "margin", id: "comments", "aria-label": "Comments" },
      h("div", { class: "col-head margin-head" }, h("h2", {}, "Comments ", this.count), h("label", { class: "check" }, toggle, " Show resolved")),
      this.threads,
    );
    this.offs = [
      doc.comments.on("change", () => this.refresh()),
      doc.on("change", (e) => {
        if (this.draft) this.draft.range = transformRange(e.op, this.draft.range);
      }),
    ];
    editor.onLayout = (tops, height) => this.layout(tops, height);
    editor.onCaretIn = (id) => this.setActive(id, false);
    this.refresh();
  }

  destroy() {
    for (const off of this.offs) off();
  }

  /** startDraft opens a new-comment form for the editor's selection; false when nothing is selected. */
  startDraft() {
    const sel = this.editor.selection();
    const from = Math.min(sel.anchor, sel.head);
    const to = Math.max(sel.anchor, sel.head);
    if (from === to) return false;
    this.cancelDraft();
    const input = h("textarea", { id: "comment-input", rows: "3", placeholder: "Add a comment… (@name to mention)", "aria-label": "New comment" });
    const error = h("p", { class: "form-error", role: "alert" });
    const submit = h("button", { type: "submit", class: "primary", id: "comment-submit" }, "Comment");
    const el = h(
      "form",
      {
        class: "thread draft",
        "data-comment-id": "draft",
        onsubmit: async (e) => {
          e.preventDefault();
          const text = input.value.trim();
          if (!text) return;
          submit.disabled = true;
          error.textContent = "";
          try {
            const c = await this.doc.comments.add(this.draft.range, text);
            this.cancelDraft();
            this.setActive(c.id, true);
          } catch (err) {
            error.textContent = explain(err, "this document");
            submit.disabled = false;
          }
        },
      },
      h("blockquote", { class: "quote" }),
      input,
      error,
      h("div", { class: "row" }, submit, h("button", { type: "button", onclick: () => this.cancelDraft() }, "Cancel")),
    );
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) el.requestSubmit();
      if (e.key === "Escape") {
        this.cancelDraft();
        this.editor.textarea.focus();
      }
    });
    this.draft = { range: { from, to }, el };
    this.threads.prepend(el);
    this.refresh();
    input.focus();
    return true;
  }

  cancelDraft() {
    if (!this.draft) return;
    this.draft.el.remove();
    this.draft = null;
    this.refresh();
  }

  setActive(id, scroll) {
    if (this.active === id) return;
    this.active = id;
    for (const [tid, card] of this.cards) card.el.classList.toggle("active", tid === id);
    this.pushRanges();
    if (scroll && id) this.cards.get(id)?.el.scrollIntoView({ block: "nearest" });
  }

  // refresh brings the cards up to date with the comments.
  refresh() {
    const all = this.doc.comments.list();
    const byId = new Map(all.map((c) => [c.id, c]));
    const tops = all.filter((c) => !c.parent || !byId.has(c.parent)).sort((a, b) => a.range.from - b.range.from || cmpTime(a, b));
    const replies = new Map();
    for (const c of all) {
      if (c.parent && byId.has(c.parent)) {
        if (!replies.has(c.parent)) replies.set(c.parent, []);
        replies.get(c.parent).push(c);
      }
    }
    const open = tops.filter((c) => !c.resolved).length;
    this.count.textContent = tops.length ? `${open} open${tops.length > open ? `, ${tops.length - open} resolved` : ""}` : "";
    const seen = new Set();
    for (const t of tops) {
      if (t.resolved && !this.showResolved) continue;
      seen.add(t.id);
      let card = this.cards.get(t.id);
      if (!card) {
        card = this.makeCard(t.id);
        this.cards.set(t.id, card);
        this.threads.append(card.el);
      }
      this.fillCard(card, t, (replies.get(t.id) ?? []).sort(cmpTime));
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.el.remove();
        this.cards.delete(id);
      }
    }
    if (tops.length === 0 && !this.draft) {
      if (!this.empty) {
        this.empty = h("p", { class: "muted empty-note" }, "No comments yet. Select some text and press Comment.");
        this.threads.append(this.empty);
      }
    } else if (this.empty) {
      this.empty.remove();
      this.empty = null;
    }
    this.pushRanges();
  }

  // pushRanges has the editor highlight the comments' current ranges.
  pushRanges() {
    this.editor.setComments(() => {
      const list = [];
      for (const c of this.doc.comments.list()) {
        if (c.parent) continue;
        list.push({ id: c.id, from: c.range.from, to: c.range.to, resolved: c.resolved, active: c.id === this.active });
      }
      if (this.draft) list.push({ id: "draft", from: this.draft.range.from, to: this.draft.range.to, resolved: false, active: true });
      return list;
    });
  }

  makeCard(id) {
    const body = h("div", { class: "thread-body" });
    const input = h("input", { type: "text", placeholder: "Reply…", "aria-label": "Reply", class: "reply-input" });
    const error = h("p", { class: "form-error", role: "alert" });
    const form = h(
      "form",
      {
        class: "reply-form",
        onsubmit: async (e) => {
          e.preventDefault();
          const text = input.value.trim();
          if (!text) return;
          input.disabled = true;
          error.textContent = "";
          try {
            await this.doc.comments.reply(id, text);
            input.value = "";
          } catch (err) {
            error.textContent = explain(err, "this document");
          } finally {
            input.disabled = false;
            input.focus();
          }
        },
      },
      input,
      h("button", { type: "submit" }, "Reply"),
    );
    const actions = h("div", { class: "row thread-actions" });
    const el = h(
      "article",
      { class: "thread", "data-comment-id": id, onclick: (e) => e.target.closest("button,input,textarea") || this.setActive(id, false) },
      h("blockquote", { class: "quote" }),
      body,
      form,
      error,
      actions,
    );
    return { el, body, form, actions, error, quote: el.querySelector(".quote") };
  }

  fillCard(card, thread, replies) {
    const { el, body, form, actions } = card;
    el.dataset.resolved = String(thread.resolved);
    el.classList.toggle("resolved", thread.resolved);
    el.classList.toggle("active", thread.id === this.active);
    const key = JSON.stringify([thread, replies]);
    if (card.key === key) return; // unchanged: keep the DOM (and any edit in progress)
    card.key = key;
    body.replaceChildren(this.renderComment(thread), ...replies.map((r) => this.renderComment(r, true)));
    if (thread.resolved && replies.length > 0) {
      // A resolved thread shows its first comment only: say what is folded.
      const n = replies.length;
      body.append(h("p", { class: "folded muted" }, `${n} ${n === 1 ? "reply" : "replies"} hidden while resolved — reopen to see ${n === 1 ? "it" : "them"}`));
    }
    form.hidden = thread.resolved;
    const act = (label, fn, cls = "") =>
      h("button", {
        type: "button",
        class: cls,
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            await fn();
          } catch (err) {
            card.error.textContent = explain(err, "this comment");
          } finally {
            e.target.disabled = false;
          }
        },
      }, label);
    actions.replaceChildren(
      thread.resolved
        ? act("Reopen", () => this.doc.comments.reopen(thread.id), "reopen")
        : act("Resolve", () => this.doc.comments.resolve(thread.id), "resolve"),
    );
  }

  renderComment(c, reply = false) {
    const user = c.user ?? { id: "?", name: "?" };
    const isMe = (n) => eqi(n, this.me.name) || eqi(n, this.me.id);
    const text = h("p", { class: "comment-text" }, withMentions(c.text, isMe));
    const own = user.id === this.me.id;
    const el = h(
      "div",
      { class: reply ? "comment reply" : "comment", "data-comment-id": c.id },
      h(
        "div",
        { class: "comment-head" },
        h("span", { class: "dot", style: { background: user.color ?? colorOf(user.id) } }),
        h("strong", {}, user.name ?? user.id),
        " ",
        h("time", { datetime: c.createdAt }, clock(c.createdAt)),
      ),
      text,
    );
    if (own) {
      const edit = h("button", {
        type: "button",
        class: "link",
        onclick: () => {
          const input = h("input", { type: "text", value: c.text, "aria-label": "Edit comment" });
          const form = h(
            "form",
            {
              class: "edit-form",
              onsubmit: async (e) => {
                e.preventDefault();
                const v = input.value.trim();
                if (v && v !== c.text) await this.doc.comments.edit(c.id, v).catch(() => {});
                else form.replaceWith(text);
              },
            },
            input,
            h("button", { type: "submit" }, "Save"),
          );
          text.replaceWith(form);
          input.focus();
        },
      }, "Edit");
      const del = h("button", { type: "button", class: "link danger", onclick: () => this.doc.comments.delete(c.id).catch(() => {}) }, "Delete");
      el.append(h("div", { class: "row small" }, edit, del));
    }
    return el;
  }

  // layout places each card level with its text. tops: comment id → px.
  layout(tops, height) {
    this.tops = tops;
    const text = this.doc.text;
    const quote = (r) => {
      if (r.from >= r.to) return "(text deleted)";
      const s = [...text].slice(r.from, r.to).join("");
      return "“" + (s.length > 80 ? s.slice(0, 80) + "…" : s) + "”";
    };
    for (const [id, card] of this.cards) {
      const c = this.doc.comments.get(id);
      if (c) card.quote.textContent = quote(c.range);
    }
    if (this.draft) this.draft.el.querySelector(".quote").textContent = quote(this.draft.range);

    const items = [];
    if (this.draft) items.push({ el: this.draft.el, top: tops.get("draft") ?? 0 });
    for (const [id, card] of this.cards) items.push({ el: card.el, top: tops.get(id) ?? Infinity });
    if (narrow.matches) {
      for (const it of items) it.el.style.top = "";
      this.threads.style.height = "";
      return;
    }
    items.sort((a, b) => a.top - b.top);
    let bottom = 0;
    for (const it of items) {
      const want = Number.isFinite(it.top) ? it.top : bottom;
      const top = Math.max(want, bottom);
      it.el.style.top = `${top}px`;
      it.el.dataset.top = String(Math.round(want));
      bottom = top + it.el.offsetHeight + 8;
    }
    if (this.empty) this.empty.style.top = "0px";
    this.threads.style.height = `${Math.max(height, bottom)}px`;
  }
}

function cmpTime(a, b) {
  return String(a.createdAt).localeCompare(String(b.createdAt));
}

function eqi(a, b) {
  return String(a).toLowerCase() === String(b).toLowerCase();
}
