import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSse, readEventStream } from "./sse.ts";

test("complete events are parsed, comments skipped and the unfinished rest kept", () => {
  const parsed = parseSse("retry: 5000\n: connected\n\nid: 7\nevent: notification\ndata: {\"a\":1}\n\nid: 8\ndata: par");
  assert.equal(parsed.retryMs, 5000);
  assert.deepEqual(parsed.events, [{ id: "7", event: "notification", data: '{"a":1}' }]);
  assert.equal(parsed.rest, "id: 8\ndata: par");
});

test("multi-line data is joined and CRLF is accepted", () => {
  const parsed = parseSse("data: one\r\ndata: two\r\n\r\n");
  assert.deepEqual(parsed.events, [{ id: null, event: "message", data: "one\ntwo" }]);
});

test("after a drop the reader reconnects with the last id it saw", async () => {
  const seen: (string | null)[] = [];
  const ids: string[] = [];
  let calls = 0;
  const done = new Promise<void>((resolve) => {
    const stream = readEventStream({
      open: async (lastEventId) => {
        seen.push(lastEventId);
        calls += 1;
        if (calls === 3) {
          stream.stop();
          resolve();
        }
        const body = calls === 1 ? "retry: 1\n\nid: 4\ndata: x\n\nid: 5\ndata: y\n\n" : "";
        return new Response(body, { status: 200 });
      },
      onEvent: (event) => ids.push(event.id ?? ""),
    });
  });
  await done;
  assert.deepEqual(ids, ["4", "5"]);
  assert.deepEqual(seen.slice(0, 2), [null, "5"]);
});
