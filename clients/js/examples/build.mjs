// build.mjs bundles the example pages with esbuild: codemirror.html and
// monaco.html with their scripts (the Tandem client, the binding and the
// editor in one file each), Monaco's CSS and worker, and index.html.
//
//   node build.mjs [--outdir DIR] [--serve [HOST:]PORT] [--no-minify]
//
// --outdir defaults to dist/ beside this file. --serve also serves the
// pages (esbuild's server, rebuilding on each request) until interrupted.
// scripts/build-examples.sh at the repository root runs it.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const outdir = resolve(opt("--outdir") ?? join(here, "dist"));
const serve = opt("--serve");
const minify = !args.includes("--no-minify");

mkdirSync(outdir, { recursive: true });
for (const f of ["index.html", "codemirror.html", "monaco.html", "style.css"]) copyFileSync(join(here, f), join(outdir, f));

// Monaco's worker, as a classic script.
await esbuild.build({
  absWorkingDir: here,
  entryPoints: { "editor.worker": "monaco-editor/editor/editor.worker.js" },
  bundle: true,
  format: "iife",
  outdir,
  minify,
  logLevel: "warning",
});

const pages = {
  absWorkingDir: here,
  entryPoints: ["codemirror.js", "monaco.js"],
  bundle: true,
  format: "esm",
  target: "es2022",
  outdir,
  minify,
  loader: { ".ttf": "file" },
  logLevel: "warning",
};
if (serve) {
  const [host, port] = serve.includes(":") ? serve.split(":") : ["127.0.0.1", serve];
  const ctx = await esbuild.context(pages);
  const s = await ctx.serve({ servedir: outdir, host, port: Number(port) });
  console.log(`examples: http://${s.hosts?.[0] ?? host}:${s.port}/ (Ctrl+C to stop)`);
} else {
  await esbuild.build(pages);
  console.log(`examples: built in ${outdir}`);
}
