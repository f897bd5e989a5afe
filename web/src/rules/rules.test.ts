// The phone's rules give the golden vectors' answers (the server's rules are held to the same files).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { outcomes, progress, visibleItems } from "./rules.ts";
import type { RuleAnswer, ServedChecklist } from "./types.ts";

interface GoldenCase {
  name: string;
  context: { branch_type?: string; channel?: string };
  answers: Record<string, RuleAnswer>;
  photo_counts: Record<string, number>;
  expect: { visible: string[]; outcomes: Record<string, string>; progress: unknown };
}

const folder = fileURLToPath(new URL("../../../rules/golden/", import.meta.url));
const files = readdirSync(folder).filter((name) => name.endsWith(".json")).sort();

test("the golden folder has vectors", () => {
  assert.ok(files.length >= 3);
});

for (const file of files) {
  const vector = JSON.parse(readFileSync(folder + file, "utf8")) as { checklist: ServedChecklist; cases: GoldenCase[] };
  for (const golden of vector.cases) {
    test(`${file}: ${golden.name}`, () => {
      const visible = [...visibleItems(vector.checklist, golden.answers, golden.context)].sort();
      assert.deepEqual(visible, golden.expect.visible);
      assert.deepEqual(outcomes(vector.checklist, golden.answers, golden.context), golden.expect.outcomes);
      assert.deepEqual(progress(vector.checklist, golden.answers, golden.photo_counts, golden.context), golden.expect.progress);
    });
  }
}
