// A checklist definition's lines with the problems the server found on each, for the inline listing.
import type { DefinitionProblem } from "./api.ts";

export interface DefinitionLine {
  number: number;
  text: string;
  problems: DefinitionProblem[];
}

/** The text's lines, each with its problems; problems without a line (or past the end) come apart. */
export function linesWithProblems(text: string, problems: readonly DefinitionProblem[]): { lines: DefinitionLine[]; unplaced: DefinitionProblem[] } {
  const lines: DefinitionLine[] = text.split(/\r?\n/).map((line, index) => ({ number: index + 1, text: line, problems: [] }));
  if (lines.length > 1 && lines[lines.length - 1]?.text === "") lines.pop();
  const unplaced: DefinitionProblem[] = [];
  for (const problem of problems) {
    const line = problem.line ? lines[problem.line - 1] : undefined;
    if (line) line.problems.push(problem);
    else unplaced.push(problem);
  }
  return { lines, unplaced };
}

/** Only the lines near a problem (and the problems), so a long definition stays readable; gaps are null. */
export function linesAround(lines: readonly DefinitionLine[], context = 2): (DefinitionLine | null)[] {
  const wanted = new Set<number>();
  lines.forEach((line, index) => {
    if (!line.problems.length) return;
    for (let i = Math.max(0, index - context); i <= Math.min(lines.length - 1, index + context); i++) wanted.add(i);
  });
  const out: (DefinitionLine | null)[] = [];
  let last = -1;
  for (const index of [...wanted].sort((a, b) => a - b)) {
    if (index !== last + 1) out.push(null);
    out.push(lines[index] as DefinitionLine);
    last = index;
  }
  if (out.length && last !== lines.length - 1) out.push(null);
  return out;
}
