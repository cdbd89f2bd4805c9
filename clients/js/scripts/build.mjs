// Copies the client's one source, web/static/tandem.js with its
// declarations tandem.d.ts (the files the Tandem server serves at
// /tandem.js), into dist/ for the npm package. npm runs it before packing
// (the "prepare" script); dist/ is never committed, so the package cannot
// drift from the source.
import { copyFileSync, mkdirSync } from "node:fs";

const src = new URL("../../../web/static/", import.meta.url);
const dist = new URL("../dist/", import.meta.url);
mkdirSync(dist, { recursive: true });
for (const f of ["tandem.js", "tandem.d.ts"]) copyFileSync(new URL(f, src), new URL(f, dist));
