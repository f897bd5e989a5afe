import assert from "node:assert/strict";
import { test } from "node:test";
import { linesAround, linesWithProblems } from "./definition.ts";

const problem = (line: number | null, msg = "bad") => ({ loc: ["sections", 0], path: "sections[0]", msg, line });

test("problems land on their lines; those without a line or past the end come apart", () => {
  const { lines, unplaced } = linesWithProblems("a: 1\nb: 2\nc: 3\n", [problem(2), problem(null), problem(9)]);
  assert.equal(lines.length, 3);
  assert.deepEqual(lines[1]?.problems.map((p) => p.line), [2]);
  assert.deepEqual(unplaced.map((p) => p.line), [null, 9]);
});

test("only the lines around problems are kept, with gaps marked", () => {
  const text = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join("\n");
  const { lines } = linesWithProblems(text, [problem(10)]);
  const shown = linesAround(lines, 2);
  assert.deepEqual(shown.map((l) => l?.number ?? null), [null, 8, 9, 10, 11, 12, null]);
});
