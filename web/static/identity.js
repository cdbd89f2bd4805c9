// identity.js: who the browser connects as.
//
// Production (the server has a JWT secret): the embedding application gives
// a token, as ?token=<JWT> in the page's URL (kept for the tab's session and
// removed from the address bar) or as a global set before the app loads:
// window.TANDEM_TOKEN = "<JWT>" or a function returning one (or a promise),
// which is called again whenever the client needs a fresh token.
//
// Development (no secret): anyone connects as a guest and names themselves
// in the name picker. The server draws each user in the palette colour that
// an FNV-1a hash of the user id picks, so the picker finds an id that lands
// on the chosen colour.

import { connect } from "./tandem.js";
import { PALETTE, colorOf, colourName, h, setApiToken } from "./util.js";

const IDENTITY_KEY = "tandem-demo:identity";
const TOKEN_KEY = "tandem-demo:token";

/** tokenSource returns the production token (string or function), or null. */
export function tokenSource() {
  const url = new URL(location.href);
  const fromURL = url.searchParams.get("token");
  if (fromURL) {
    try {
      sessionStorage.setItem(TOKEN_KEY, fromURL);
    } catch {
      // Storage denied: the token lives only in this page.
    }
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url);
    return fromURL;
  }
  const g = globalThis.TANDEM_TOKEN;
  if (typeof g === "string" && g) return g;
  if (typeof g === "function") return g;
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** savedIdentity returns the development identity {id, name, color}, if one was picked. */
export function savedIdentity() {
  try {
    const v = JSON.parse(localStorage.getItem(IDENTITY_KEY) ?? "null");
    if (v && typeof v.id === "string" && typeof v.name === "string") return v;
  } catch {
    // Corrupt or denied: pick again.
  }
  return null;
}

function saveIdentity(ident) {
  try {
    localStorage.setItem(IDENTITY_KEY, JSON.stringify(ident));
  } catch {
    // Denied: it lasts for this page.
  }
}

/** slug makes a user id base from a name: letters, digits, "_", "-" and ".". */
function slug(name) {
  const s = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_.\-]+/gu, "-")
    .replace(/^-+|-+$/g, "");
  return (s || "guest").slice(0, 40);
}

const NONCE_KEY = "tandem:guest-nonce";

// browserNonce returns this browser's own random guest tag, made once and
// kept: two browsers that pick the same name and colour are still two
// guests (a name picked is a display name, not someone else's identity).
function browserNonce() {
  const fresh = () => Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => (b % 36).toString(36)).join("");
  try {
    let n = localStorage.getItem(NONCE_KEY);
    if (!n || !/^[a-z0-9]{4,12}$/.test(n)) {
      n = fresh();
      localStorage.setItem(NONCE_KEY, n);
    }
    return n;
  } catch {
    return fresh(); // no storage: a guest for this page only
  }
}

/**
 * idFor returns a user id for name whose colour is PALETTE[colorIndex]:
 * the name's slug with this browser's own tag, so that no one becomes
 * another person by picking their name.
 */
export function idFor(name, colorIndex, nonce = browserNonce()) {
  const base = `${slug(name)}-${nonce}`;
  if (colorOf(base) === PALETTE[colorIndex]) return base;
  for (let n = 2; ; n++) {
    const id = `${base}-${n}`;
    if (colorOf(id) === PALETTE[colorIndex]) return id;
  }
}

/**
 * detectMode asks the server how it runs. Resolves "prod" (clients need a
 * token), "dev" (guests may connect and the HTTP API is open to them),
 * "dev-locked" (guests may connect but API keys guard the HTTP API, which
 * the app needs) or "unreachable".
 */
export async function detectMode() {
  let mode;
  try {
    const res = await fetch("/healthz", { method: "GET" });
    mode = (await res.json()).mode;
  } catch {
    return "unreachable";
  }
  if (mode === "production") return "prod";
  try {
    const res = await fetch("/api/docs", { method: "GET" });
    if (res.status !== 401) return "dev";
    return mode === "development" ? "dev-locked" : "prod"; // an older server says no mode
  } catch {
    return "unreachable";
  }
}

/** apiLockedMessage explains a development server whose API needs a key. */
export function apiLockedMessage() {
  return h(
    "div",
    { class: "card error-card", role: "alert", id: "api-locked" },
    h("h1", {}, "The HTTP API is locked"),
    h(
      "p",
      {},
      "This Tandem server runs in development mode (no TANDEM_JWT_SECRET) but guards its HTTP API with API keys (TANDEM_API_KEYS), and this app lists and creates documents through that API.",
    ),
    h(
      "p",
      { class: "muted" },
      "Start the server without TANDEM_API_KEYS to try the demo, or set TANDEM_JWT_SECRET and open the page with ?token=<JWT> from `tandem token`.",
    ),
  );
}

/**
 * namePicker renders the development-mode identity form into container and
 * resolves with {id, name, color} once submitted (and saved).
 */
export function namePicker(container, current = null) {
  return new Promise((resolve) => {
    let chosen = current ? Math.max(0, PALETTE.indexOf(current.color)) : Math.floor(Math.random() * PALETTE.length);
    const nameInput = h("input", {
      id: "pick-name",
      name: "name",
      required: true,
      maxlength: "40",
      autocomplete: "nickname",
      value: current?.name ?? "",
      placeholder: "e.g. Ann",
    });
    const swatches = PALETTE.map((c, i) =>
      h(
        "label",
        { class: "swatch", style: { "--swatch": c } },
        h("input", {
          type: "radio",
          name: "color",
          value: String(i),
          checked: i === chosen,
          onchange: () => (chosen = i),
        }),
        h("span", { class: "sr-only" }, colourName(c)),
      ),
    );
    const form = h(
      "form",
      {
        class: "card picker",
        id: "name-picker",
        onsubmit: (e) => {
          e.preventDefault();
          const name = nameInput.value.trim();
          if (!name) return;
          const ident = { id: idFor(name, chosen), name, color: PALETTE[chosen] };
          saveIdentity(ident);
          resolve(ident);
        },
      },
      h("h1", {}, "Welcome to Tandem"),
      h("p", { class: "muted" }, "This server runs in development mode: pick a name and a colour to edit as. Others see your cursor, comments and messages under this name."),
      h("label", { for: "pick-name" }, "Your name"),
      nameInput,
      h("fieldset", { class: "swatches" }, h("legend", {}, "Your colour"), swatches),
      h("button", { type: "submit", class: "primary", id: "pick-go" }, "Start editing"),
    );
    container.replaceChildren(form);
    nameInput.focus();
  });
}

/**
 * openClient connects the tandem.js client as the identity: {token} in
 * production, {id, name} in development. The HTTP API calls send the same
 * token.
 */
export function openClient(ident) {
  const options = { url: location.origin, backoff: { min: 400, max: 5000 } };
  if (ident.token) {
    options.token = ident.token;
    setApiToken(ident.token);
  } else {
    options.token = "";
    options.user = ident.id;
    options.name = ident.name;
    setApiToken(null);
  }
  return connect(options);
}

/** needTokenMessage explains that a production server wants a token. */
export function needTokenMessage() {
  return h(
    "div",
    { class: "card error-card", role: "alert" },
    h("h1", {}, "Sign-in needed"),
    h("p", {}, "This Tandem server runs in production mode: it needs a token from the application that embeds it."),
    h("p", { class: "muted" }, "Open this page from your application, or add ?token=<JWT> to the address. Applications can also set window.TANDEM_TOKEN before loading the app."),
  );
}

