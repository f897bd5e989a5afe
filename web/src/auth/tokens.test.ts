import assert from "node:assert/strict";
import { test } from "node:test";
import { LoginNeeded } from "../api/problem.ts";
import type { SessionRecord } from "../storage/records.ts";
import { type LockRunner, refreshUnderLock } from "./tokens.ts";

const user = { id: "u1", username: "insp", role: "inspector" };

function world(status = 200) {
  let stored: SessionRecord = { user, access_token: "a0", refresh_token: "r0", access_expires_at: 0, needs_login: false };
  let generation = 0;
  const calls: string[] = [];
  let queue = Promise.resolve();
  // A mutex like the Web Locks API: one holder at a time, in request order.
  const lock: LockRunner = (_name, work) => {
    const run = queue.then(work);
    queue = run.then(() => undefined, () => undefined);
    return run;
  };
  const deps = {
    store: { read: async () => stored, write: async (s: SessionRecord) => void (stored = s) },
    lock,
    now: () => 1_000,
    call: async (refresh: string) => {
      calls.push(refresh);
      await new Promise((r) => setTimeout(r, 5));
      if (status !== 200) return { status };
      generation += 1;
      return { status: 200, tokens: { access_token: `a${generation}`, refresh_token: `r${generation}`, expires_in: 900, user } };
    },
  };
  return { deps, calls, current: () => stored };
}

test("two tabs whose token expired together send one refresh and share its result", async () => {
  const { deps, calls } = world();
  const [one, two] = await Promise.all([refreshUnderLock("a0", deps), refreshUnderLock("a0", deps)]);
  assert.deepEqual(calls, ["r0"]);
  assert.equal(one.access_token, "a1");
  assert.equal(two.access_token, "a1");
});

test("a refused refresh keeps the user and asks for a login", async () => {
  const { deps, current } = world(401);
  await assert.rejects(refreshUnderLock("a0", deps), LoginNeeded);
  assert.equal(current().needs_login, true);
  assert.equal(current().user.id, "u1");
  await assert.rejects(refreshUnderLock("a0", deps), LoginNeeded);
});
