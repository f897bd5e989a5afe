// The outbox drained from the page: at start, on `online`, when the page becomes visible, after every
// change, and on a timer that follows the backoff (capped at 5 minutes). One tab drains at a time.
import { apiCall, apiJson } from "../api/client.ts";
import { ApiError, LoginNeeded, NetworkError, itemIdsOf, problemSlug } from "../api/problem.ts";
import { userDb } from "../storage/db.ts";
import { announceOutboxChange, listenToOtherTabs, nowIso, outboxChanged } from "../storage/field.ts";
import type { SubmitResultRecord } from "../storage/records.ts";
import { TusRefused, tusUpload } from "../tus/client.ts";
import { capabilities, startBodyFor } from "./capabilities.ts";
import { BACKOFF_CAP_MS, classify, drain, type OutboxAction, type OutboxDeps, type Outcome, requeued } from "./outbox.ts";
import { syncStatus } from "./status.ts";

const UPLOADS = "/api/v1/uploads";
let activeUser: string | null = null;
let timer: ReturnType<typeof setTimeout> | null = null;
let running: Promise<void> | null = null;
let rerun = false;

// What a refused photo upload is called, by status, when the tus answer carried no problem type.
const TUS_REASONS: Record<number, string> = { 413: "payload-too-large", 415: "unsupported-media-type", 422: "photo-rejected" };

function failure(error: unknown): Outcome {
  if (error instanceof LoginNeeded) return { kind: "login" };
  if (error instanceof NetworkError) return { kind: "retry", error: "network", reason: "network" };
  if (error instanceof ApiError) {
    const reason = problemSlug(error.problem);
    const outcome = classify(error.status, error.problem?.detail || reason);
    if (outcome.kind === "park") {
      const items = itemIdsOf(error.problem);
      return { ...outcome, reason, ...(items.length ? { items } : {}) };
    }
    return outcome.kind === "retry" ? { ...outcome, reason } : outcome;
  }
  if (error instanceof TusRefused) {
    const outcome = classify(error.status, error.message);
    return outcome.kind === "park" ? { ...outcome, reason: TUS_REASONS[error.status] ?? "unknown" } : outcome;
  }
  return { kind: "retry", error: error instanceof Error ? error.message : String(error) };
}

/** The request behind each kind of action. */
async function perform(userId: string, batch: OutboxAction[]): Promise<Outcome> {
  const head = batch[0] as OutboxAction;
  const db = await userDb(userId);
  try {
    if (head.kind === "start") {
      const started = await apiJson<{ checklist_version: number; status: string }>(`/audits/${head.audit_id}`, { method: "PUT", json: startBodyFor(head.payload, await capabilities()) });
      // A server that could not pin the version the phone started on says which one it chose.
      const audit = await db.get("audits", head.audit_id);
      if (audit && audit.checklist_version !== started.checklist_version) {
        await db.put("audits", { ...audit, checklist_version: started.checklist_version, updated_at: nowIso() });
      }
    } else if (head.kind === "answers") {
      await apiCall(`/audits/${head.audit_id}/answers`, { method: "PATCH", json: batch.map((a) => a.payload) });
    } else if (head.kind === "photo") {
      await sendPhoto(userId, head);
    } else if (head.kind === "photo_delete") {
      await apiCall(`/photos/${String(head.payload.server_photo_id ?? head.payload.photo_id)}`, { method: "DELETE", accept: [404] });
    } else {
      const result = await apiJson<SubmitResultRecord>(`/audits/${head.audit_id}/submit`, { method: "POST" });
      const audit = await db.get("audits", head.audit_id);
      if (audit) await db.put("audits", { ...audit, status: "submitted", result, updated_at: nowIso() });
    }
    return { kind: "done" };
  } catch (error) {
    return failure(error);
  }
}

async function sendPhoto(userId: string, action: OutboxAction): Promise<void> {
  const db = await userDb(userId);
  const photo = await db.get("photos", String(action.payload.photo_id));
  if (!photo) return; // removed meanwhile: nothing left to send
  if (photo.server_photo_id) return;
  const metadata: Record<string, string> = {
    audit_id: photo.audit_id,
    item_id: photo.item_id,
    filename: photo.name,
    client_photo_id: photo.id,
    client_captured_at: photo.client_captured_at,
  };
  if (photo.client_location) metadata.client_location = JSON.stringify(photo.client_location);
  const serverId = await tusUpload({
    endpoint: UPLOADS,
    file: photo.blob,
    metadata,
    state: { url: action.upload_url ?? null, offset: action.offset ?? 0 },
    http: (url, init) => apiCall(url, { method: init.method ?? "GET", headers: init.headers as Record<string, string>, ...(init.body ? { body: init.body } : {}), raw: true }),
    save: async (state) => {
      action.upload_url = state.url;
      action.offset = state.offset;
      await db.put("outbox", action);
      syncStatus.revision += 1;
    },
  });
  await db.put("photos", { ...photo, server_photo_id: serverId });
}

function outboxDeps(userId: string): OutboxDeps {
  return {
    list: async () => (await userDb(userId)).getAll("outbox"),
    save: async (action) => {
      await (await userDb(userId)).put("outbox", action);
    },
    remove: async (actions) => {
      const tx = (await userDb(userId)).transaction("outbox", "readwrite");
      await Promise.all([...actions.map((a) => tx.store.delete(a.id)), tx.done]);
    },
    perform: (batch) => perform(userId, batch),
    now: Date.now,
  };
}

async function refreshStatus(userId: string): Promise<void> {
  const actions = await (await userDb(userId)).getAll("outbox");
  syncStatus.pending = actions.length;
  syncStatus.parked = actions.filter((a) => a.state === "parked").length;
  syncStatus.online = navigator.onLine;
  syncStatus.revision += 1;
}

function schedule(at: number | null): void {
  if (timer) clearTimeout(timer);
  timer = null;
  if (!activeUser) return;
  const wait = at === null ? BACKOFF_CAP_MS : Math.min(BACKOFF_CAP_MS, Math.max(1_000, at - Date.now()));
  timer = setTimeout(() => void drainNow(false), wait);
}

async function drainOnce(userId: string, force: boolean): Promise<void> {
  const run = async () => {
    syncStatus.phase = "sending";
    const report = await drain(outboxDeps(userId), force);
    if (report.sent) syncStatus.lastSyncedAt = nowIso();
    syncStatus.phase = report.loginNeeded ? "login" : report.parked ? "parked" : report.retrying ? "waiting" : "idle";
    schedule(report.nextAt);
  };
  const locks = navigator.locks;
  if (!locks) return run();
  // Another tab holding the lock is draining this outbox already.
  await locks.request(`branch-audit:drain:${userId}`, { ifAvailable: true }, async (lock) => {
    if (lock) await run();
    else schedule(Date.now() + 5_000);
  });
}

/** Send what can be sent; `force` ignores backoff. Calls while a drain runs make it run once more. */
export function drainNow(force = true): Promise<void> {
  const userId = activeUser;
  if (!userId) return Promise.resolve();
  if (running) {
    rerun = true;
    return running;
  }
  running = (async () => {
    try {
      do {
        rerun = false;
        await drainOnce(userId, force);
      } while (rerun && activeUser === userId);
    } catch (error) {
      console.warn("outbox drain failed", error);
      schedule(Date.now() + 10_000);
    } finally {
      running = null;
      await refreshStatus(userId).catch(() => undefined);
    }
  })();
  return running;
}

const onOnline = () => {
  syncStatus.online = true;
  void drainNow(true);
};
const onOffline = () => {
  syncStatus.online = false;
};
const onVisible = () => {
  if (document.visibilityState === "visible") void drainNow(true);
};
const onChange = () => {
  if (activeUser) void refreshStatus(activeUser);
  void drainNow(true);
};

export function startEngine(userId: string): void {
  if (activeUser === userId) {
    void drainNow(true); // signed in again after a forced logout: send what waited
    return;
  }
  stopEngine();
  activeUser = userId;
  listenToOtherTabs();
  window.addEventListener("online", onOnline);
  window.addEventListener("offline", onOffline);
  document.addEventListener("visibilitychange", onVisible);
  outboxChanged.addEventListener("change", onChange);
  void refreshStatus(userId).then(() => drainNow(true));
}

export function stopEngine(): void {
  activeUser = null;
  if (timer) clearTimeout(timer);
  timer = null;
  window.removeEventListener("online", onOnline);
  window.removeEventListener("offline", onOffline);
  document.removeEventListener("visibilitychange", onVisible);
  outboxChanged.removeEventListener("change", onChange);
}

/** Retry a parked action (after the cause was fixed) or everything now. */
export async function retryNow(action?: OutboxAction): Promise<void> {
  if (action && activeUser) {
    await (await userDb(activeUser)).put("outbox", requeued(action));
    announceOutboxChange();
  }
  await drainNow(true);
}
