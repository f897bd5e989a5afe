// The signed-in console user's notifications: the latest page once, then live from the SSE stream (read
// with fetch so the bearer goes in a header; resumed with Last-Event-ID). Kept in memory only.
import { ref, shallowRef } from "vue";
import { apiCall } from "../api/client.ts";
import { getJson, postJson } from "./api.ts";
import { readEventStream } from "./sse.ts";
import type { NotificationItem, Page } from "./types.ts";

export const notifications = shallowRef<NotificationItem[]>([]);
export const streamState = ref<"connecting" | "live" | "waiting" | "off">("off");
let running: { stop: () => void } | null = null;
let runningFor: string | null = null;

function merge(items: NotificationItem[]): void {
  const byId = new Map(notifications.value.map((n) => [n.id, n]));
  for (const item of items) byId.set(item.id, item);
  notifications.value = [...byId.values()].sort((a, b) => b.seq - a.seq).slice(0, 200);
}

export async function loadNotifications(): Promise<void> {
  const page = await getJson<Page<NotificationItem>>("/notifications", { limit: 50 });
  merge(page.items);
}

export function startNotifications(userId: string): void {
  if (runningFor === userId) return;
  stopNotifications();
  runningFor = userId;
  notifications.value = [];
  void loadNotifications().catch(() => undefined);
  running = readEventStream({
    open: (lastEventId, signal) =>
      apiCall("/notifications/stream", {
        headers: { Accept: "text/event-stream", ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) },
        signal,
        raw: true,
      }),
    onEvent: (event) => {
      if (event.event !== "notification") return;
      try {
        merge([JSON.parse(event.data) as NotificationItem]);
      } catch {
        // A malformed event is skipped; the next one carries on.
      }
    },
    onState: (state) => {
      streamState.value = state;
    },
  });
}

export function stopNotifications(): void {
  running?.stop();
  running = null;
  runningFor = null;
  streamState.value = "off";
}

export async function markRead(item: NotificationItem): Promise<void> {
  await postJson(`/notifications/${item.id}/read`, {});
  merge([{ ...item, read_at: new Date().toISOString() }]);
}
