// What the header's sync dot and the sync centre show, updated by the sync engine after every change.
import { reactive } from "vue";

export type SyncPhase = "idle" | "sending" | "waiting" | "parked" | "offline" | "login";

export const syncStatus = reactive({
  phase: "idle" as SyncPhase,
  /** Actions not yet acknowledged by the server. */
  pending: 0,
  parked: 0,
  online: typeof navigator === "undefined" ? true : navigator.onLine,
  lastSyncedAt: null as string | null,
  /** Bumped whenever the outbox changes, so screens re-read it. */
  revision: 0,
});
