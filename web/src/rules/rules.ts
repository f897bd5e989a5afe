// The server's audit rules (server/domain/audit_rules.py) on the phone: applicability, show_if
// visibility, pass/fail and progress. Golden vectors in rules/golden/ hold both to the same answers.
import type { Outcome, PhotoPolicy, RuleAnswer, ServedChecklist, ServedItem } from "./types.ts";

export interface Context {
  branch_type?: string | null;
  channel?: string | null;
}

export interface Progress {
  answered: number;
  required: number;
  missing_items: string[];
  missing_photos: string[];
  complete: boolean;
}

export function itemsOf(checklist: ServedChecklist): ServedItem[] {
  return checklist.sections.flatMap((section) => section.items);
}

export function isScored(item: ServedItem): boolean {
  return item.scored ?? (item.type !== "text" && item.type !== "photo");
}

export function photoPolicy(item: ServedItem): PhotoPolicy {
  const raw: Partial<PhotoPolicy> = typeof item.photo === "string" ? { policy: item.photo as PhotoPolicy["policy"] } : (item.photo ?? {});
  const policy = (raw.policy ?? "none") as PhotoPolicy["policy"];
  let min = raw.min ?? 0;
  if ((policy === "required" || policy === "required_on_fail") && min < 1) min = 1;
  return { policy, min, max: raw.max ?? 5 };
}

export function scaleOf(item: ServedItem): { min: number; max: number; pass_at: number } {
  return item.scale ?? { min: 1, max: 5, pass_at: 4 };
}

const RULE = /^\s*(<=|>=|<|>|==)\s*(-?\d+(?:\.\d+)?)\s*$/;

export function passesRule(rule: string, measured: number): boolean {
  const match = RULE.exec(rule);
  if (!match) throw new Error(`pass_rule ${rule} must look like '<= 10'`);
  const limit = Number(match[2]);
  switch (match[1]) {
    case "<": return measured < limit;
    case "<=": return measured <= limit;
    case ">": return measured > limit;
    case ">=": return measured >= limit;
    default: return measured === limit;
  }
}

/** Whether an answered item meets its standard (before visibility). */
export function outcome(item: ServedItem, answer: RuleAnswer | undefined): Outcome {
  if (!isScored(item)) return "unscored";
  if (answer === undefined) return "unanswered";
  if (answer.na) return "na";
  const value = answer.value;
  if (value === null || value === undefined) return "unanswered";
  if (item.type === "yes_no") return value === true ? "pass" : "fail";
  if (item.type === "rating") return Number(value) >= scaleOf(item).pass_at ? "pass" : "fail";
  if (item.type === "number" || item.type === "timer") {
    if (!item.pass_rule) throw new Error(`${item.id} has no pass_rule`);
    return passesRule(item.pass_rule, Number(value)) ? "pass" : "fail";
  }
  const passing = new Map((item.options ?? []).map((o) => [o.id, o.passing ?? true]));
  const chosen = item.type === "single_choice" ? [value] : Array.isArray(value) ? value : [];
  return chosen.every((v) => passing.get(String(v)) === true) ? "pass" : "fail";
}

/** Whether an item applies to this branch type and channel at all. */
export function applies(item: ServedItem, context: Context): boolean {
  const rule = item.applies_to;
  if (!rule) return true;
  const { branch_type: branchType, channel } = context;
  if (rule.branch_types && branchType && !rule.branch_types.includes(branchType)) return false;
  return !(rule.channels && channel && !rule.channels.includes(channel));
}

// Python's == between JSON values: numbers compare by value (1 == 1.0, True == 1), lists element-wise.
function pyEquals(a: unknown, b: unknown): boolean {
  const num = (v: unknown) => (typeof v === "boolean" ? Number(v) : v);
  const x = num(a);
  const y = num(b);
  if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((v, i) => pyEquals(v, y[i]));
  if (x !== null && y !== null && typeof x === "object" && typeof y === "object") {
    return JSON.stringify(x) === JSON.stringify(y);
  }
  return x === y;
}

function conditionHolds(conditionItem: ServedItem | undefined, answer: RuleAnswer | undefined, item: ServedItem): boolean {
  const condition = item.show_if;
  if (!condition || !conditionItem || answer === undefined || answer.na) return false;
  if (condition.failed !== undefined && condition.failed !== null) {
    return outcome(conditionItem, answer) === (condition.failed ? "fail" : "pass");
  }
  if (condition.in !== undefined && condition.in !== null) {
    const allowed = condition.in;
    if (Array.isArray(answer.value)) return answer.value.some((v) => allowed.some((a) => pyEquals(v, a)));
    return allowed.some((a) => pyEquals(answer.value, a));
  }
  if (condition.equals !== undefined && condition.equals !== null) {
    if (Array.isArray(answer.value)) return answer.value.some((v) => pyEquals(v, condition.equals));
    return pyEquals(answer.value, condition.equals);
  }
  return answer.value !== null && answer.value !== undefined;
}

/** Ids of the items that apply and whose show_if holds (hidden items are neither required nor scored). */
export function visibleItems(checklist: ServedChecklist, answers: Record<string, RuleAnswer>, context: Context = {}): Set<string> {
  const items = new Map(itemsOf(checklist).map((item) => [item.id, item]));
  const memo = new Map<string, boolean>();
  const shown = (itemId: string, trail: Set<string>): boolean => {
    const known = memo.get(itemId);
    if (known !== undefined) return known;
    const item = items.get(itemId);
    if (!item || trail.has(itemId)) return false; // unknown reference or a cycle: hide rather than guess
    let result = applies(item, context);
    if (result && item.show_if) {
      const next = new Set(trail).add(itemId);
      result = shown(item.show_if.item, next) && conditionHolds(items.get(item.show_if.item), answers[item.show_if.item], item);
    }
    memo.set(itemId, result);
    return result;
  };
  return new Set([...items.keys()].filter((id) => shown(id, new Set())));
}

/** How many photos an item needs given its answer (0 when none are required). */
export function photosNeeded(item: ServedItem, answer: RuleAnswer | undefined): number {
  if (answer?.na) return 0;
  const policy = photoPolicy(item);
  if (item.type === "photo" || policy.policy === "required") return Math.max(1, policy.min);
  if (policy.policy === "required_on_fail" && answer !== undefined && outcome(item, answer) === "fail") {
    return Math.max(1, policy.min);
  }
  return 0;
}

/** What is answered and what is still missing, in checklist order. */
export function progress(
  checklist: ServedChecklist,
  answers: Record<string, RuleAnswer>,
  photoCounts: Record<string, number>,
  context: Context = {},
): Progress {
  const visible = visibleItems(checklist, answers, context);
  const result: Progress = { answered: 0, required: 0, missing_items: [], missing_photos: [], complete: false };
  for (const item of itemsOf(checklist)) {
    if (!visible.has(item.id)) continue;
    const answer = answers[item.id];
    const needed = photosNeeded(item, answer);
    const hasPhotos = (photoCounts[item.id] ?? 0) >= needed;
    const required = item.required ?? true;
    if (item.type === "photo") {
      if (required) {
        result.required += 1;
        if (hasPhotos) result.answered += 1;
        else result.missing_photos.push(item.id);
      }
      continue;
    }
    if (required) {
      result.required += 1;
      if (answer !== undefined && (answer.na || (answer.value !== null && answer.value !== undefined))) result.answered += 1;
      else result.missing_items.push(item.id);
    }
    if (needed && !hasPhotos) result.missing_photos.push(item.id);
  }
  result.complete = result.missing_items.length === 0 && result.missing_photos.length === 0;
  return result;
}

/** Outcomes of the visible items (hidden ones are "hidden"), as the golden vectors state them. */
export function outcomes(checklist: ServedChecklist, answers: Record<string, RuleAnswer>, context: Context = {}): Record<string, Outcome | "hidden"> {
  const visible = visibleItems(checklist, answers, context);
  const result: Record<string, Outcome | "hidden"> = {};
  for (const item of itemsOf(checklist)) result[item.id] = visible.has(item.id) ? outcome(item, answers[item.id]) : "hidden";
  return result;
}
