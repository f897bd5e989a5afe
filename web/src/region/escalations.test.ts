import assert from "node:assert/strict";
import { test } from "node:test";
import type { Rectification } from "../console/types.ts";
import { escalatedWork } from "./escalations.ts";

function rect(id: string, status: Rectification["status"], overdue: boolean, dueAt: string, level = 0): Rectification {
  return {
    id, finding_id: `f-${id}`, audit_id: "a", branch_id: "b", region_id: "r", item_id: "i", item_text: "Item",
    severity: "major", status, overdue, due_at: dueAt, timezone: "Asia/Shanghai", note: null, photo_ids: [],
    inspector_photo_ids: [], extension: null, escalation_level: level, finding: null, created_at: dueAt, closed_at: null,
  };
}

test("a fix handed in but not verified by its deadline is listed, as the region's overdue count counts it", () => {
  const waiting = rect("waiting", "submitted", true, "2026-11-24T10:00:00Z");
  assert.deepEqual(escalatedWork([waiting]).map((r) => r.id), ["waiting"]);
});

test("only overdue work is listed, the most escalated first, then the oldest deadline", () => {
  const listed = escalatedWork([
    rect("on-time", "open", false, "2026-12-09T10:00:00Z"),
    rect("done", "verified", false, "2026-11-01T10:00:00Z"),
    rect("late", "open", true, "2026-11-20T10:00:00Z", 1),
    rect("later", "open", true, "2026-11-10T10:00:00Z", 1),
    rect("escalated", "open", true, "2026-11-28T10:00:00Z", 2),
  ]);
  assert.deepEqual(listed.map((r) => r.id), ["escalated", "later", "late"]);
});
