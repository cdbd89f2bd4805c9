// util.js: small helpers shared by the demo app (index.html) and the
// dashboard (dashboard.html): DOM building, the HTTP API, user colours,
// errors people can read, and @mentions.

/**
 * h builds an element: h("button", {class: "x", onclick: fn}, "Label").
 * Attributes starting with "on" become listeners; null/false ones are left
 * out; children may be strings, nodes, arrays, or null.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "style" && typeof v === "object") {
      for (const [prop, val] of Object.entries(v)) {
        if (prop.startsWith("--")) el.style.setProperty(prop, val);
        else el.style[prop] = val;
      }
    }
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces el's children. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// ---------------------------------------------------------------------------
// Users and colours

/** The server's palette (proto ColorOf): a user's colour is picked by an FNV-1a hash of the id. */
export const PALETTE = ["#e0457b", "#3b82f6", "#10b981", "#f59e0b", "#8b5cf6", "#ef4444", "#14b8a6", "#f97316", "#6366f1", "#84cc16"];
const PALETTE_NAMES = ["Pink", "Blue", "Green", "Amber", "Violet", "Red", "Teal", "Orange", "Indigo", "Lime"];

/** colourName names a palette colour for people and screen readers (the hex code otherwise). */
export function colourName(c) {
  const i = PALETTE.indexOf(c);
  return i >= 0 ? PALETTE_NAMES[i] : c;
}

/** fnv1a returns the 32-bit FNV-1a hash of s's UTF-8 bytes. */
export function fnv1a(s) {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** colorOf returns the colour the server gives user id. */
export function colorOf(id) {
  return PALETTE[fnv1a(id) % PALETTE.length];
}

/** tint returns a CSS colour: hex with alpha a (0..1). */
export function tint(hex, a) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex ?? "");
  if (!m) return `rgba(120,120,120,${a})`;
  return `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${a})`;
}

/** initials returns one or two letters for an avatar. */
export function initials(name) {
  const parts = String(name ?? "?").trim().split(/\s+/).filter(Boolean);
  const first = [...(parts[0] ?? "?")][0] ?? "?";
  const second = parts.length > 1 ? [...parts[parts.length - 1]][0] : "";
  return (first + second).toUpperCase();
}

/** avatar renders a user's round badge. */
export function avatar(user, extra = "") {
  const name = user?.name ?? user?.id ?? "?";
  return h(
    "span",
    { class: "avatar", style: { background: user?.color ?? colorOf(user?.id ?? "") }, title: name + extra, "data-user": user?.id ?? "" },
    h("span", { "aria-hidden": "true" }, initials(name)),
    h("span", { class: "sr-only" }, name + extra),
  );
}

// ---------------------------------------------------------------------------
// The HTTP API

/** ApiError is a failed API request: code is the wire code, or "unreachable". */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

let apiToken = null; // a string, a function returning one, or null

/** setApiToken sets the Bearer token (production mode) the API calls send. */
export function setApiToken(t) {
  apiToken = t;
}

/**
 * api calls the HTTP API: api("GET", "/api/docs"). body is sent as JSON.
 * Resolves with the decoded JSON (null for 204), rejects with ApiError.
 */
export async function api(method, path, body) {
  const headers = {};
  const token = typeof apiToken === "function" ? await apiToken() : apiToken;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError("unreachable", `cannot reach the server (${err.message})`, 0);
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    // Not JSON: a proxy's error page, say.
  }
  if (!res.ok) {
    throw new ApiError(data?.code ?? (res.status >= 500 ? "unavailable" : "bad_request"), data?.message ?? res.statusText, res.status);
  }
  return data;
}

/** docPath returns /api/docs/<id> with the id escaped. */
export function docPath(id, rest = "") {
  return `/api/docs/${encodeURIComponent(id)}${rest}`;
}

/** explain turns an error (ApiError, TandemError) into a sentence for people. */
export function explain(err, what = "this") {
  switch (err?.code) {
    case "forbidden":
      return `You don't have access to ${what}. Ask its owner for access.`;
    case "not_found":
      return `${cap(what)} does not exist (or was deleted).`;
    case "unauthorized":
      return "The server did not accept your sign-in token (missing, invalid or expired). Open this page again from your application.";
    case "unreachable":
    case "disconnected":
      return `Can't reach the Tandem server at ${location.host}. Check that it is running; this page keeps retrying.`;
    case "rate_limited":
      return "Slow down: the server is rate-limiting you. Try again in a moment.";
    case "too_large":
      return "That is too large for the server.";
    case "unavailable":
      return "The server is unavailable right now. Try again in a moment.";
    case "conflict":
      return `${cap(what)} already exists.`;
    default:
      return err?.message ? `Something went wrong: ${err.message}` : "Something went wrong.";
  }
}

function cap(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// ---------------------------------------------------------------------------
// Text

/** mentionRe finds @names as the server does (session.Mentions). */
const mentionRe = /(^|[^\p{L}\p{N}_.\-])@([\p{L}\p{N}_.\-]+)/gu;

/**
 * withMentions renders text with each @name in a <mark class="mention">;
 * isMe(name) marks mentions of the reader with the class "me".
 */
export function withMentions(text, isMe) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(mentionRe)) {
    const name = m[2].replace(/[.\-]+$/, "");
    if (!name) continue;
    const start = m.index + m[1].length;
    out.push(text.slice(last, start));
    out.push(h("mark", { class: isMe(name) ? "mention me" : "mention" }, "@" + name));
    last = start + 1 + name.length;
  }
  out.push(text.slice(last));
  return out;
}

/** clock formats a timestamp as a local time of day. */
export function clock(ts) {
  const d = ts instanceof Date ? ts : new Date(ts);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** when formats a timestamp for lists: time today, else date and time. */
export function when(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return "";
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

/** toast shows a short notice at the corner; kind "mention" or "error" stay until dismissed. */
export function toast(message, { kind = "info", action = null, timeout = 6000 } = {}) {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", { id: "toasts", class: "toasts", "aria-live": "polite" });
    document.body.append(box);
  }
  const close = () => el.remove();
  const el = h(
    "div",
    { class: `toast ${kind}`, role: kind === "error" || kind === "mention" ? "alert" : "status" },
    h("div", { class: "toast-body" }, message),
    action,
    h("button", { type: "button", class: "icon-button", "aria-label": "Dismiss", onclick: close }, "×"),
  );
  box.append(el);
  if (kind !== "mention" && kind !== "error" && timeout > 0) setTimeout(close, timeout);
  return el;
}
