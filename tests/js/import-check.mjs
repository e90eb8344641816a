// Replays how the wildcards-generator web app imports a skeleton, with the same `yaml` package
// (2.8.x): YAML.parseDocument(text), then for each pair of every map the instruction is the
// text after `instruction:` in the value node's `commentBefore` or `comment`; lists are
// wildcards. Prints JSON: every category's key path and instruction (null when none), every
// list's key path and items. Usage: node import-check.mjs SKELETON.yaml
import { readFileSync } from 'node:fs';
import YAML from 'yaml';

const file = process.argv[2];
if (!file) {
  console.error('usage: node import-check.mjs SKELETON.yaml');
  process.exit(2);
}
const doc = YAML.parseDocument(readFileSync(file, 'utf8'));
if (doc.errors.length > 0) {
  console.error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
  process.exit(1);
}

function instructionOf(node) {
  for (const comment of [node?.commentBefore, node?.comment]) {
    const m = typeof comment === 'string' ? /instruction:(.*)/.exec(comment) : null;
    if (m) return m[1].trim();
  }
  return null;
}

function text(node) {
  return YAML.isScalar(node) ? String(node.value) : String(node);
}

const pkg = new URL('./node_modules/yaml/package.json', import.meta.url);
const out = { yaml_version: JSON.parse(readFileSync(pkg, 'utf8')).version, categories: [], lists: [] };

function walk(map, path) {
  for (const pair of map.items) {
    const keyPath = [...path, text(pair.key)];
    out.categories.push({ path: keyPath, instruction: instructionOf(pair.value) });
    if (YAML.isMap(pair.value)) {
      walk(pair.value, keyPath);
    } else if (YAML.isSeq(pair.value)) {
      out.lists.push({ path: keyPath, items: pair.value.items.map(text) });
    }
  }
}

if (!YAML.isMap(doc.contents)) {
  console.error(`${file}: the document is not a mapping`);
  process.exit(1);
}
walk(doc.contents, []);
process.stdout.write(JSON.stringify(out));
