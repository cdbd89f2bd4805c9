// Builds the npm package's dist/ from the one source of each file, so the
// package cannot drift from what the repository runs:
//
//   - web/static/tandem.js and tandem.d.ts (the client the Tandem server
//     serves at /tandem.js) are copied to dist/;
//   - the editor bindings (codemirror/, monaco/ and their shared editor/),
//     which in the repository import the client from web/static, are copied
//     to dist/ with that import pointed at dist/tandem.js.
//
// npm runs it before packing (the "prepare" script); dist/ is never
// committed.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";

const root = new URL("../", import.meta.url);
const src = new URL("../../web/static/", root);
const dist = new URL("dist/", root);
mkdirSync(dist, { recursive: true });
for (const f of ["tandem.js", "tandem.d.ts"]) copyFileSync(new URL(f, src), new URL(f, dist));

// In the repository a binding reaches the client as ../../../web/static/tandem.js
// (from clients/js/<dir>/); in dist/<dir>/ it is ../tandem.js.
const clientImport = /(["'])\.\.\/\.\.\/\.\.\/web\/static\/tandem\.js\1/g;
for (const dir of ["editor", "codemirror", "monaco"]) {
  mkdirSync(new URL(`${dir}/`, dist), { recursive: true });
  for (const f of readdirSync(new URL(`${dir}/`, root))) {
    if (!f.endsWith(".js") && !f.endsWith(".d.ts")) continue;
    const text = readFileSync(new URL(`${dir}/${f}`, root), "utf8");
    writeFileSync(new URL(`${dir}/${f}`, dist), text.replace(clientImport, '$1../tandem.js$1'));
  }
}
