// The npm package as a user gets it: `npm pack`, the tarball installed into
// a scratch project in a temporary directory, then imported from Node (an
// ES module and a CommonJS one, as docs/js-client.md says), type-checked
// with `tsc --strict` (the first example of docs/js-client.md, as printed),
// and bundled by esbuild into a page that a headless Chromium runs against
// the real server.
import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SERVER, skip, uniq, serverText, waitFor } from "../support/helpers.mjs";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const root = fileURLToPath(new URL("../../..", import.meta.url));
const bin = (name) => join(pkgDir, "node_modules", ".bin", name);
const haveTools = existsSync(bin("esbuild")) && existsSync(bin("tsc"));
const skipPkg = skip || (!haveTools && "clients/js/node_modules lacks esbuild or tsc: run scripts/setup.sh");

let scratch = "";
before(() => {
  if (skipPkg) return;
  scratch = mkdtempSync(join(tmpdir(), "tandem-pkg-"));
  const tgz = execFileSync("npm", ["pack", "--silent", "--pack-destination", scratch], { cwd: pkgDir, encoding: "utf8" }).trim().split("\n").at(-1);
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--loglevel=error", join(scratch, tgz)], { cwd: scratch, stdio: "pipe" });
});
after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test("the tarball holds the client, its types, the reserved bindings and the docs, nothing else", { skip: skipPkg }, () => {
  const dir = join(scratch, "node_modules", "@tandemhq", "client");
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  assert.deepEqual(Object.keys(pkg.exports).sort(), [".", "./codemirror", "./monaco", "./package.json"]);
  assert.equal(pkg.private, true);
  // One source: the packed client is web/static/tandem.js byte for byte.
  for (const f of ["tandem.js", "tandem.d.ts"]) {
    assert.equal(readFileSync(join(dir, "dist", f), "utf8"), readFileSync(join(root, "web", "static", f), "utf8"), f);
  }
  for (const f of ["README.md", "CHANGELOG.md", "dist/codemirror/index.js", "dist/monaco/index.js", "dist/editor/sync.js"]) assert.ok(existsSync(join(dir, f)), f);
  assert.ok(!existsSync(join(dir, "test")) && !existsSync(join(dir, "node_modules")));
  // The bindings reach the packed client, not the repository's web/static.
  for (const sub of ["editor", "codemirror", "monaco"]) {
    for (const f of readdirSync(join(dir, "dist", sub))) {
      const text = readFileSync(join(dir, "dist", sub, f), "utf8");
      assert.ok(!text.includes("web/static/tandem.js\""), `dist/${sub}/${f} imports the repository's client`);
      if (/from "\.\.\/tandem\.js"/.test(text)) assert.ok(existsSync(join(dir, "dist", "tandem.js")));
    }
  }
});

test("imported from Node, an ES module edits a document", { skip: skipPkg }, async () => {
  const id = uniq("pkg-node");
  const out = execFileSync(
    process.execPath,
    [
      "--experimental-websocket",
      "--no-warnings",
      "--input-type=module",
      "-e",
      `import { connect } from "@tandemhq/client";
       const client = connect({ url: process.argv[1], storage: null });
       const doc = client.openDoc(process.argv[2]);
       await doc.ready;
       doc.insert(0, "from node");
       await doc.synced();
       console.log(doc.text);
       client.close();`,
      SERVER,
      id,
    ],
    { cwd: scratch, encoding: "utf8", timeout: 20000 },
  );
  assert.equal(out.trim(), "from node");
  assert.equal((await serverText(id)).text, "from node");
});

test("imported from CommonJS with import(), as documented", { skip: skipPkg }, () => {
  writeFileSync(
    join(scratch, "cjs.cjs"),
    `const pkg = require("./node_modules/@tandemhq/client/package.json");
     import("@tandemhq/client").then(({ connect, splice }) => {
       console.log(pkg.name, typeof connect, JSON.stringify(splice(1, 0, "x")));
     });`,
  );
  const out = execFileSync(process.execPath, ["cjs.cjs"], { cwd: scratch, encoding: "utf8", timeout: 20000 });
  assert.equal(out.trim(), '@tandemhq/client function [1,"x"]');
});

test("the first example of docs/js-client.md type-checks with tsc --strict against the package", { skip: skipPkg }, () => {
  const md = readFileSync(join(root, "docs", "js-client.md"), "utf8");
  const m = md.match(/```ts\n([\s\S]*?)```/);
  assert.ok(m, "docs/js-client.md has a ts example");
  writeFileSync(join(scratch, "example.ts"), m[1]);
  writeFileSync(
    join(scratch, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { target: "es2022", module: "nodenext", moduleResolution: "nodenext", lib: ["es2022", "dom"], types: [], strict: true, noEmit: true, skipLibCheck: false },
      files: ["example.ts"],
    }),
  );
  try {
    execFileSync(bin("tsc"), ["-p", "."], { cwd: scratch, encoding: "utf8" });
  } catch (err) {
    assert.fail(`tsc --strict on the first example of docs/js-client.md:\n${err.stdout}${err.stderr}`);
  }
});

test("bundled by esbuild into a page, it edits a document in Chromium", { skip: skipPkg, timeout: 60000 }, async (t) => {
  const chromium = process.env.TANDEM_CHROMIUM || "/usr/bin/chromium";
  if (!existsSync(chromium)) {
    if (process.env.TANDEM_REQUIRE_BROWSER) assert.fail(`no ${chromium}: run scripts/install-chromium.sh`);
    t.skip(`no ${chromium}: run scripts/install-chromium.sh`);
    return;
  }
  const id = uniq("pkg-page");
  const dir = join(scratch, "page");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "main.js"),
    `import { connect } from "@tandemhq/client";
     const q = new URLSearchParams(location.search);
     const client = connect({ url: q.get("server"), storage: null });
     const doc = client.openDoc(q.get("doc"));
     doc.ready
       .then(async () => {
         doc.insert(0, "from the bundle");
         await doc.synced();
         console.log("TANDEM-BUNDLE " + doc.text);
       })
       .catch((e) => console.log("TANDEM-BUNDLE-ERROR " + e.code + " " + e.message));`,
  );
  writeFileSync(join(dir, "index.html"), `<!doctype html><meta charset="utf-8"><title>bundle</title><script src="main.bundle.js"></script>`);
  execFileSync(bin("esbuild"), ["page/main.js", "--bundle", "--format=iife", "--platform=browser", "--target=es2022", "--outfile=page/main.bundle.js", "--log-level=warning"], { cwd: scratch });
  // Served from a loopback origin, as a developer's page would be: a
  // development-mode server refuses pages of other origins (file:// is
  // the origin "null").
  const pages = createServer((req, res) => {
    const name = new URL(req.url, "http://x").pathname.slice(1) || "index.html";
    if (!["index.html", "main.bundle.js"].includes(name)) return res.writeHead(404).end();
    res.writeHead(200, { "Content-Type": name.endsWith(".js") ? "text/javascript" : "text/html" });
    res.end(readFileSync(join(dir, name)));
  });
  await new Promise((r) => pages.listen(0, "127.0.0.1", r));
  t.after(() => pages.close());
  const url = `http://127.0.0.1:${pages.address().port}/index.html?server=${encodeURIComponent(SERVER)}&doc=${encodeURIComponent(id)}`;
  const profile = mkdtempSync(join(tmpdir(), "tandem-pkg-chromium-"));
  const proc = spawn(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", `--user-data-dir=${profile}`, "--enable-logging=stderr", "--v=0", url], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr.on("data", (b) => (log += b));
  try {
    const line = await waitFor(() => log.match(/TANDEM-BUNDLE(-ERROR)? [^"]*/)?.[0], "the page's result", 30000);
    assert.equal(line, "TANDEM-BUNDLE from the bundle");
    assert.equal((await serverText(id)).text, "from the bundle");
  } finally {
    proc.kill();
    await new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
    // Chromium's helper processes may still be writing the profile.
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch {
      // Left in the temporary directory.
    }
  }
});
