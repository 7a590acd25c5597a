// Turns the CRDs checked in under crds/ into validators with @kubernetes-models/crd-generate
// (its generate(), what its `crd-generate` CLI runs), into gen/ (git-ignored): gen/_schemas/*.js
// are the compiled validators validate.mjs loads (the .ts models beside them are unused).
// `node generate.mjs` regenerates; run.sh calls it when gen/ is missing or older than a CRD.
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

// Its CommonJS build: the ES module one imports a directory (ajv/dist/standalone), which Node
// refuses.
const { generate } = createRequire(import.meta.url)("@kubernetes-models/crd-generate");

const here = dirname(fileURLToPath(import.meta.url));
const crdDir = join(here, "crds");
const out = join(here, "gen");
const files = readdirSync(crdDir).filter((f) => f.endsWith(".yaml")).sort();
if (files.length === 0) throw new Error(`no CRD in ${crdDir}`);
const input = files.map((f) => readFileSync(join(crdDir, f), "utf8")).join("\n---\n");

rmSync(out, { recursive: true, force: true });
const log = console.log;
console.log = () => {}; // generate() prints every file it writes
try {
  await generate({ input, outputPath: out });
} finally {
  console.log = log;
}
writeFileSync(join(out, ".stamp"), files.join("\n") + "\n");
log(`kube: validators for ${files.length} CRD files in ${out}`);
