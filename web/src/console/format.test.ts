import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDate, formatDateTime, localDay, localInputValue, timeLeft, zonedInstant, zoneName } from "./format.ts";

test("a UTC instant shows at the branch's local time", () => {
  assert.match(formatDateTime("2026-11-02T01:00:00Z", "Asia/Shanghai", "en"), /9:00\sAM/);
  assert.match(formatDateTime("2026-11-02T01:00:00Z", "Europe/Madrid", "en"), /2:00\sAM/);
});

test("a bare date stays the same calendar day in every zone", () => {
  assert.match(formatDate("2026-11-02", "America/Los_Angeles", "en"), /Nov 2, 2026/);
});

test("the local day of an instant depends on the zone", () => {
  assert.equal(localDay("2026-11-01T20:00:00Z", "Asia/Shanghai"), "2026-11-02");
  assert.equal(localDay("2026-11-01T20:00:00Z", "Europe/Madrid"), "2026-11-01");
});

test("time left counts days and hours, says closing under two days, and closed after", () => {
  const now = Date.parse("2026-11-02T00:00:00Z");
  assert.deepEqual(timeLeft("2026-11-05T05:00:00Z", now), { closed: false, days: 3, hours: 5, closing: false });
  assert.deepEqual(timeLeft("2026-11-03T01:00:00Z", now), { closed: false, days: 1, hours: 1, closing: true });
  assert.equal(timeLeft("2026-11-01T00:00:00Z", now)?.closed, true);
  assert.equal(timeLeft(null, now), null);
});

test("a wall time in the branch's zone becomes the right instant, across DST", () => {
  assert.equal(zonedInstant("2026-11-10T17:00", "Asia/Shanghai"), "2026-11-10T09:00:00.000Z");
  assert.equal(zonedInstant("2026-07-10T17:00", "Europe/Madrid"), "2026-07-10T15:00:00.000Z");
  assert.equal(zonedInstant("2026-12-10T17:00", "Europe/Madrid"), "2026-12-10T16:00:00.000Z");
  assert.equal(localInputValue("2026-12-10T16:00:00.000Z", "Europe/Madrid"), "2026-12-10T17:00");
});

test("a zone is named as people say it, and an unknown one keeps its id", () => {
  assert.equal(zoneName("Asia/Shanghai", "en"), "China Time");
  assert.equal(zoneName("Europe/Madrid", "zh-CN"), "西班牙时间");
  assert.equal(zoneName("UTC", "es"), "UTC");
  assert.equal(zoneName("Mars/Olympus", "en"), "Mars/Olympus");
});
