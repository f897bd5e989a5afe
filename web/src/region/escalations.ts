// Which of a region's rectifications the Escalations screen lists. Plain so it is tested with node --test.
import type { Rectification } from "../console/types.ts";

/**
 * Overdue work, most escalated first, then the oldest deadline. "Overdue" is the server's flag (unfinished work
 * past its deadline: open, or submitted and not yet verified), the same rule the region's cards count with
 * (overdue_now), so the two screens never disagree; the list's State column tells which side is waiting.
 */
export function escalatedWork(rects: readonly Rectification[]): Rectification[] {
  return rects
    .filter((r) => r.overdue)
    .sort((a, b) => b.escalation_level - a.escalation_level || a.due_at.localeCompare(b.due_at));
}
