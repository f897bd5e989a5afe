// Every message exists in all three languages, with the same placeholders, and every key the screens
// use exists: a missing translation fails here, not on a phone.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const LANGUAGES = ["zh-CN", "en", "es"];
const here = fileURLToPath(new URL(".", import.meta.url));
const src = fileURLToPath(new URL("..", import.meta.url));

function flatten(value: unknown, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof value === "string") out.set(prefix, value);
  else if (value && typeof value === "object") {
    for (const [key, child] of Object.entries(value)) {
      for (const [k, v] of flatten(child, prefix ? `${prefix}.${key}` : key)) out.set(k, v);
    }
  }
  return out;
}

const areas = new Set(LANGUAGES.flatMap((language) => readdirSync(join(here, language)).filter((f) => f.endsWith(".json"))));
const messages = new Map<string, Map<string, string>>();
for (const language of LANGUAGES) {
  const all = new Map<string, string>();
  for (const area of areas) {
    let parsed: unknown = {};
    try {
      parsed = JSON.parse(readFileSync(join(here, language, area), "utf8"));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    for (const [k, v] of flatten(parsed)) all.set(k, v);
  }
  messages.set(language, all);
}

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test("every key exists in zh-CN, en and es, non-empty, with the same placeholders", () => {
  const en = messages.get("en") as Map<string, string>;
  for (const language of LANGUAGES) {
    const these = messages.get(language) as Map<string, string>;
    const missing = [...en.keys()].filter((k) => !these.has(k));
    const extra = [...these.keys()].filter((k) => !en.has(k));
    assert.deepEqual(missing, [], `${language} lacks keys`);
    assert.deepEqual(extra, [], `${language} has keys en lacks`);
    for (const [key, text] of these) {
      assert.ok(text.trim(), `${language} ${key} is empty`);
      assert.deepEqual(placeholders(text), placeholders(en.get(key) as string), `${language} ${key} placeholders`);
    }
  }
});

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(vue|ts)$/.test(entry.name) && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

test("every literal key the screens use exists", () => {
  const en = messages.get("en") as Map<string, string>;
  const used = new Set<string>();
  for (const file of sourceFiles(src)) {
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(/\bt\(\s*["']([a-zA-Z][\w-]*(?:\.[\w-]+)+)["']/g)) used.add(match[1] as string);
    for (const match of text.matchAll(/title: "([a-z]+\.[\w.-]+)"/g)) used.add(match[1] as string);
  }
  const missing = [...used].filter((key) => !en.has(key) && ![...en.keys()].some((k) => k.startsWith(`${key}.`)));
  assert.deepEqual(missing, []);
});
