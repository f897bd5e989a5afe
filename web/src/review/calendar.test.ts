import assert from "node:assert/strict";
import { test } from "node:test";
import { calendarWeeks } from "./calendar.ts";

test("the calendar starts on the Monday of the first week and covers the period", () => {
  const weeks = calendarWeeks("2026-11-04", "2026-11-16");
  assert.equal(weeks.length, 3);
  assert.deepEqual(weeks[0]?.[0], { day: "2026-11-02", inPeriod: false });
  assert.deepEqual(weeks[0]?.[2], { day: "2026-11-04", inPeriod: true });
  assert.deepEqual(weeks[2]?.[0], { day: "2026-11-16", inPeriod: true });
  assert.deepEqual(weeks[2]?.[1], { day: "2026-11-17", inPeriod: false });
});
