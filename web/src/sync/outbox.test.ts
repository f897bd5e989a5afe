import assert from "node:assert/strict";
import { test } from "node:test";
import { BACKOFF_CAP_MS, backoffMs, classify, drain, type OutboxAction, type OutboxDeps, type Outcome } from "./outbox.ts";

function action(audit: string, seq: number, kind: OutboxAction["kind"], payload: Record<string, unknown> = {}): OutboxAction {
  return { id: `${audit}-${seq}`, audit_id: audit, seq, kind, payload, state: "queued", attempts: 0, next_at: 0, last_error: null, last_status: null, created_at: "" };
}

function memory(actions: OutboxAction[], answer: (batch: OutboxAction[]) => Outcome, clock = { now: 1_000 }) {
  const stored = new Map(actions.map((a) => [a.id, a]));
  const sent: string[][] = [];
  const deps: OutboxDeps = {
    list: async () => [...stored.values()].map((a) => ({ ...a })),
    save: async (a) => void stored.set(a.id, { ...a }),
    remove: async (done) => done.forEach((a) => stored.delete(a.id)),
    perform: async (batch) => {
      sent.push(batch.map((a) => a.id));
      return answer(batch);
    },
    now: () => clock.now,
  };
  return { deps, stored, sent, clock };
}

test("actions go in order per audit, consecutive answers as one request", async () => {
  const queue = [action("a", 1, "start"), action("a", 2, "answers"), action("a", 3, "answers"), action("a", 5, "photo"), action("a", 6, "answers"), action("a", 7, "submit")];
  const { deps, stored, sent } = memory(queue.reverse(), () => ({ kind: "done" }));
  const report = await drain(deps);
  assert.deepEqual(sent, [["a-1"], ["a-2", "a-3"], ["a-5"], ["a-6"], ["a-7"]]);
  assert.equal(report.sent, 6);
  assert.equal(stored.size, 0);
});

test("a network failure keeps the action, backs off, and holds back the rest of that audit only", async () => {
  const queue = [action("a", 1, "start"), action("a", 2, "submit"), action("b", 3, "start")];
  const { deps, stored, sent, clock } = memory(queue, (batch) => (batch[0]?.audit_id === "a" ? { kind: "retry", error: "network" } : { kind: "done" }));
  const report = await drain(deps);
  assert.deepEqual(sent, [["a-1"], ["b-3"]]);
  assert.equal(stored.get("a-1")?.attempts, 1);
  assert.equal(stored.get("a-1")?.next_at, clock.now + 2_000);
  assert.equal(report.nextAt, clock.now + 2_000);
  assert.ok(stored.has("a-2"));
  // A timed drain before the backoff ends sends nothing; a forced one (online again) does.
  const again = await drain(deps);
  assert.equal(sent.length, 2);
  assert.equal(again.nextAt, clock.now + 2_000);
  await drain(deps, true);
  assert.deepEqual(sent.at(-1), ["a-1"]);
});

test("backoff doubles and is capped at five minutes", () => {
  assert.deepEqual([1, 2, 3, 4].map(backoffMs), [2_000, 4_000, 8_000, 16_000]);
  assert.equal(backoffMs(30), BACKOFF_CAP_MS);
  assert.equal(BACKOFF_CAP_MS, 300_000);
});

test("a 4xx parks the action with its reason and the items it names; the audit waits", async () => {
  const queue = [action("a", 1, "submit"), action("a", 2, "answers")];
  const { deps, stored, sent } = memory(queue, () => ({ kind: "park", error: "Missing answers", status: 422, items: ["hall_clean"] }));
  const report = await drain(deps);
  assert.equal(report.parked, 1);
  const parked = stored.get("a-1");
  assert.equal(parked?.state, "parked");
  assert.equal(parked?.last_error, "Missing answers");
  assert.deepEqual(parked?.problem_items, ["hall_clean"]);
  await drain(deps, true);
  assert.equal(sent.length, 1, "nothing behind a parked action is sent");
});

test("a refused login stops the drain and keeps everything", async () => {
  const queue = [action("a", 1, "start"), action("b", 2, "start")];
  const { deps, stored, sent } = memory(queue, () => ({ kind: "login" }));
  const report = await drain(deps);
  assert.equal(report.loginNeeded, true);
  assert.equal(sent.length, 1);
  assert.equal(stored.size, 2);
  assert.equal(stored.get("a-1")?.attempts, 0);
});

test("statuses: 5xx, 408, 429 and no answer retry; 401 asks for a login; other 4xx park", () => {
  assert.equal(classify(null, "x").kind, "retry");
  assert.equal(classify(503, "x").kind, "retry");
  assert.equal(classify(429, "x").kind, "retry");
  assert.equal(classify(408, "x").kind, "retry");
  assert.equal(classify(401, "x").kind, "login");
  assert.equal(classify(422, "x").kind, "park");
  assert.equal(classify(409, "x").kind, "park");
});
