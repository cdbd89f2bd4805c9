// history.js: a document's history. A slider picks any version; the text
// shown is the server's own content at that version (GET
// /api/docs/{id}?version=N), coloured by who wrote each character, which
// comes from replaying the op log (GET /api/docs/{id}/ops) from version 0.
// "Changes" compares two versions (GET /api/docs/{id}/diff); "Restore"
// makes an old version the current text as a new edit (PUT .../content),
// so nothing anyone wrote is lost: it all stays in the history.

import { api, docPath, h, clock, colorOf, explain, tint, toast } from "./util.js";

const CHECKPOINT = 200; // versions between cached replay states
const MAX_OPS = 50000; // beyond this many ops, show text without authors

export class HistoryPanel {
  constructor(doc, people, { onClose, onRestore } = {}) {
    this.onRestore = onRestore ?? (async () => {});
    this.doc = doc;
    this.people = people;
    this.head = doc.version;
    this.ops = []; // index v: {op, user, ts} of the op that took v to v+1
    this.opsLoaded = 0; // ops[0..opsLoaded) are known
    this.opsBroken = false;
    this.contents = new Map(); // version → text
    this.checkpoints = new Map([[0, { chars: [], authors: [] }]]);
    this.version = null;
    this.seq = 0;

    this.slider = h("input", { type: "range", id: "history-slider", min: "0", max: String(this.head), step: "1", value: String(this.head) });
    this.out = h("output", { id: "history-version", for: "history-slider" }, String(this.head));
    this.headEl = h("span", { id: "history-head" }, String(this.head));
    this.meta = h("p", { class: "muted", id: "history-meta" });
    this.legend = h("div", { class: "legend", id: "history-legend", "aria-label": "Authors" });
    this.text = h("pre", { class: "history-text", id: "history-text", tabindex: "0", "aria-label": "Text at this version" });
    this.diffFrom = h("input", { type: "number", id: "diff-from", min: "0", value: "0", inputmode: "numeric", class: "narrow-input" });
    this.diffEl = h("pre", { class: "history-text diff", id: "history-diff", hidden: true, tabindex: "0", "aria-label": "Changes" });
    this.diffSummary = h("span", { class: "muted", id: "diff-summary" });
    this.modeAuthors = h("input", { type: "radio", name: "history-mode", id: "mode-authors", value: "authors", checked: true });
    this.modeDiff = h("input", { type: "radio", name: "history-mode", id: "mode-diff", value: "diff" });
    this.status = h("p", { class: "form-error", role: "alert", id: "history-error" });
    this.restoreBtn = h("button", { type: "button", id: "history-restore", onclick: () => this.askRestore() }, "Restore this version");
    this.confirm = h("div", { class: "confirm", hidden: true, id: "restore-confirm" });

    this.el = h(
      "section",
      { class: "history", id: "history", "aria-label": "History" },
      h(
        "div",
        { class: "history-head" },
        h("h2", {}, "History"),
        h("button", { type: "button", id: "history-close", onclick: () => onClose?.() }, "Back to editing"),
      ),
      h(
        "div",
        { class: "history-controls" },
        h("label", { for: "history-slider" }, "Version ", this.out, " of ", this.headEl),
        this.slider,
        h(
          "div",
          { class: "row" },
          h("button", { type: "button", onclick: () => this.step(-1), "aria-label": "Older version" }, "◀ Older"),
          h("button", { type: "button", onclick: () => this.step(1), "aria-label": "Newer version" }, "Newer ▶"),
          h("button", { type: "button", onclick: () => this.go(this.head) }, "Latest"),
        ),
        this.meta,
      ),
      h(
        "fieldset",
        { class: "modes" },
        h("legend", { class: "sr-only" }, "Show"),
        h("label", { class: "check" }, this.modeAuthors, " Who wrote what"),
        h("label", { class: "check" }, this.modeDiff, " Changes since version "),
        h("label", { for: "diff-from", class: "sr-only" }, "Compare from version"),
        this.diffFrom,
        this.diffSummary,
      ),
      this.legend,
      this.text,
      this.diffEl,
      h("div", { class: "row" }, this.restoreBtn, this.status),
      this.confirm,
    );

    this.slider.addEventListener("input", () => this.go(Number(this.slider.value)));
    this.modeAuthors.addEventListener("change", () => this.render());
    this.modeDiff.addEventListener("change", () => this.render());
    this.diffFrom.addEventListener("change", () => {
      this.modeDiff.checked = true;
      this.render();
    });
    this.offs = [
      doc.on("change", (e) => e.origin === "remote" && this.bumpHead()),
      doc.on("ack", () => this.bumpHead()),
    ];
    this.start();
  }

  destroy() {
    for (const off of this.offs) off();
  }

  async start() {
    try {
      const info = await api("GET", docPath(this.doc.id));
      this.setHead(Math.max(info.version, this.doc.version));
    } catch (err) {
      this.status.textContent = explain(err, "this document");
    }
    this.go(this.head);
  }

  bumpHead() {
    if (this.doc.version > this.head) this.setHead(this.doc.version);
  }

  setHead(v) {
    const follow = this.version === null || this.version === this.head;
    this.head = v;
    this.slider.max = String(v);
    this.headEl.textContent = String(v);
    if (follow && this.version !== null) this.go(v);
  }

  step(d) {
    this.go(Math.min(this.head, Math.max(0, (this.version ?? this.head) + d)));
  }

  go(v) {
    this.version = v;
    this.slider.value = String(v);
    this.out.textContent = String(v);
    this.confirm.hidden = true;
    if (!this.diffFrom.matches(":focus")) this.diffFrom.value = String(Math.max(0, v - 1));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.render(), 60);
  }

  async content(v) {
    if (!this.contents.has(v)) {
      const r = await api("GET", docPath(this.doc.id, `?version=${v}`));
      this.contents.set(v, r.content);
    }
    return this.contents.get(v);
  }

  // loadOps fetches the op log up to version v (exclusive), page by page.
  async loadOps(v) {
    while (!this.opsBroken && this.opsLoaded < v) {
      if (this.opsLoaded >= MAX_OPS) {
        this.opsBroken = true;
        break;
      }
      try {
        const r = await api("GET", docPath(this.doc.id, `/ops?from=${this.opsLoaded}&to=${v}`));
        for (const o of r.ops) this.ops[o.version] = { op: o.op, user: o.user ?? "", ts: o.ts };
        const next = r.ops.length ? r.ops[r.ops.length - 1].version + 1 : v;
        if (next <= this.opsLoaded) {
          this.opsBroken = true; // compacted or missing: no authors
          break;
        }
        this.opsLoaded = next;
      } catch {
        this.opsBroken = true;
      }
    }
  }

  // authored returns [{user, text}] runs for version v, or null.
  authored(v) {
    if (this.opsBroken || this.opsLoaded < v) return null;
    let base = Math.floor(v / CHECKPOINT) * CHECKPOINT;
    while (!this.checkpoints.has(base)) base -= CHECKPOINT;
    const cp = this.checkpoints.get(base);
    const chars = cp.chars.slice();
    const authors = cp.authors.slice();
    for (let i = base; i < v; i++) {
      const rec = this.ops[i];
      if (!rec) return null;
      applyAuthored(chars, authors, rec.op, rec.user);
      if ((i + 1) % CHECKPOINT === 0 && !this.checkpoints.has(i + 1)) {
        this.checkpoints.set(i + 1, { chars: chars.slice(), authors: authors.slice() });
      }
    }
    const runs = [];
    for (let i = 0; i < chars.length; i++) {
      const last = runs[runs.length - 1];
      if (last && last.user === authors[i]) last.text += chars[i];
      else runs.push({ user: authors[i], text: chars[i] });
    }
    return runs;
  }

  nameOf(id) {
    return this.people.get(id)?.name ?? (id || "unknown");
  }

  async render() {
    const v = this.version;
    const seq = ++this.seq;
    this.el.dataset.loading = "true";
    this.status.textContent = "";
    try {
      const [text] = await Promise.all([this.content(v), this.loadOps(v)]);
      if (seq !== this.seq) return;
      const rec = v > 0 ? this.ops[v - 1] : null;
      this.meta.textContent =
        v === 0
          ? "Version 0: the empty document."
          : rec
            ? `Version ${v}: ${this.nameOf(rec.user)} at ${clock(rec.ts)} (${opSummary(rec.op)})${v === this.head ? " — the latest" : ""}`
            : `Version ${v}`;
      this.restoreBtn.disabled = v === this.head;
      if (this.modeDiff.checked) await this.renderDiff(v, seq);
      else this.renderAuthors(v, text);
      this.el.dataset.version = String(v);
    } catch (err) {
      if (seq === this.seq) this.status.textContent = explain(err, "this version");
    } finally {
      if (seq === this.seq) this.el.dataset.loading = "false";
    }
  }

  renderAuthors(v, text) {
    this.diffEl.hidden = true;
    this.text.hidden = false;
    this.diffSummary.textContent = "";
    const runs = this.authored(v);
    const exact = runs && runs.map((r) => r.text).join("") === text;
    const counts = new Map();
    if (exact) {
      this.text.replaceChildren(
        ...runs.map((r) => {
          const color = colorOf(r.user);
          counts.set(r.user, (counts.get(r.user) ?? 0) + [...r.text].length);
          return h(
            "span",
            { class: "by", "data-user": r.user, title: this.nameOf(r.user), style: { background: tint(color, 0.16), borderBottomColor: color } },
            r.text,
          );
        }),
      );
    } else {
      this.text.textContent = text;
    }
    this.text.dataset.version = String(v);
    this.legend.replaceChildren(
      ...(exact
        ? [...counts].map(([u, n]) =>
            h("span", { class: "chip" }, h("span", { class: "dot", style: { background: colorOf(u) } }), `${this.nameOf(u)} · ${n} character${n === 1 ? "" : "s"}`),
          )
        : [h("span", { class: "muted" }, text === "" ? "Empty." : "Authors are not available for this version.")]),
    );
  }

  async renderDiff(v, seq) {
    const from = Math.min(Math.max(0, Number(this.diffFrom.value) || 0), this.head);
    const r = await api("GET", docPath(this.doc.id, `/diff?from=${from}&to=${v}`));
    if (seq !== this.seq) return;
    let ins = 0;
    let del = 0;
    this.diffEl.replaceChildren(
      ...r.changes.map((c) => {
        const n = [...c.text].length;
        if (c.kind === "insert") {
          ins += n;
          return h("ins", {}, c.text);
        }
        if (c.kind === "delete") {
          del += n;
          return h("del", {}, c.text);
        }
        return c.text;
      }),
    );
    this.diffSummary.textContent = ` to ${v}: +${ins} −${del} characters`;
    this.text.hidden = true;
    this.diffEl.hidden = false;
    this.legend.replaceChildren(h("span", { class: "chip" }, h("ins", {}, "inserted")), h("span", { class: "chip" }, h("del", {}, "deleted")));
  }

  askRestore() {
    const v = this.version;
    this.confirm.replaceChildren(
      h("p", {}, `Make version ${v} the current text? It is applied as a new edit, so everyone's work since stays in the history.`),
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", class: "primary", id: "restore-yes", onclick: () => this.restore(v) }, `Restore version ${v}`),
        h("button", { type: "button", onclick: () => (this.confirm.hidden = true) }, "Cancel"),
      ),
    );
    this.confirm.hidden = false;
    this.confirm.querySelector("#restore-yes").focus();
  }

  async restore(v) {
    this.confirm.hidden = true;
    try {
      const after = await this.onRestore(v);
      toast(`Restored version ${v} (now version ${after}).`);
      if (after > this.head) this.setHead(after);
      this.go(this.head);
    } catch (err) {
      this.status.textContent = explain(err, "this document");
    }
  }
}

/**
 * restoreVersion makes version v the text of doc as an edit of this
 * client's, so that the history credits the person who restored it and
 * what others are typing meanwhile is kept (their pending edits are moved
 * over it like any edit). Resolves with {before, after}: the versions
 * before and after the restore.
 */
export async function restoreVersion(doc, v) {
  const r = await api("GET", docPath(doc.id, `?version=${v}`));
  await doc.synced();
  const before = doc.version;
  const [at, del, ins] = textSplice(doc.text, r.content);
  if (del > 0 || ins !== "") doc.spliceUTF16(at, del, ins);
  await doc.synced();
  return { before, after: doc.version };
}

// textSplice returns the one UTF-16 splice [index, deleteCount, text] that
// turns a into b: the common prefix and suffix are kept, surrogate pairs
// are never cut.
function textSplice(a, b) {
  let p = 0;
  const max = Math.min(a.length, b.length);
  while (p < max && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  if (p > 0 && a.charCodeAt(p - 1) >= 0xd800 && a.charCodeAt(p - 1) <= 0xdbff) p--;
  let s = 0;
  while (s < max - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++;
  if (s > 0 && a.charCodeAt(a.length - s) >= 0xdc00 && a.charCodeAt(a.length - s) <= 0xdfff) s--;
  return [p, a.length - s - p, b.slice(p, b.length - s)];
}

// applyAuthored applies op to a text held as code points with an author
// per code point.
function applyAuthored(chars, authors, op, user) {
  let i = 0;
  for (const c of op) {
    if (typeof c === "string") {
      const cps = [...c];
      insertAt(chars, i, cps);
      insertAt(authors, i, cps.map(() => user));
      i += cps.length;
    } else if (c > 0) i += c;
    else {
      chars.splice(i, -c);
      authors.splice(i, -c);
    }
  }
}

// insertAt inserts items into arr at i, in place, without spreading a
// huge argument list.
function insertAt(arr, i, items) {
  if (items.length < 8192) {
    arr.splice(i, 0, ...items);
    return;
  }
  const tail = arr.splice(i);
  for (const x of items) arr.push(x);
  for (const x of tail) arr.push(x);
}

function opSummary(op) {
  let ins = 0;
  let del = 0;
  for (const c of op) {
    if (typeof c === "string") ins += [...c].length;
    else if (c < 0) del -= c;
  }
  return [ins && `+${ins}`, del && `−${del}`].filter(Boolean).join(" ") || "no change";
}
