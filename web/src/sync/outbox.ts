// One ordered, idempotent outbox per audit: start, then answers, photos and submit, each keyed by a client
// UUID the server recognises on a retry. Draining is plain logic over injected storage and transport,
// so it is tested without a browser. Nothing leaves the outbox before the server has acknowledged it.

export type ActionKind = "start" | "answers" | "photo" | "photo_delete" | "submit";

export interface AnswerPayload {
  item_id: string;
  value: unknown;
  na: boolean;
  note: string | null;
  answered_at: string;
  fixed_on_spot: boolean;
}

export interface OutboxAction {
  id: string;
  audit_id: string;
  /** Order within the audit; a later action never overtakes an earlier one. */
  seq: number;
  kind: ActionKind;
  /** start: the start body; answers: one AnswerPayload; photo: {photo_id, item_id}; photo_delete: {photo_id}. */
  payload: Record<string, unknown>;
  state: "queued" | "parked";
  attempts: number;
  /** Epoch ms before which a timed drain leaves it alone (backoff). */
  next_at: number;
  /** The server's words (English problem detail) or "network". */
  last_error: string | null;
  /** The problem's kind (its type's last part, e.g. "validation"), shown in the user's language. */
  last_reason?: string | null;
  last_status: number | null;
  /** Item ids a refusal named (a 422 on submit), so the UI can jump to them. */
  problem_items?: string[];
  created_at: string;
  /** tus progress of a photo: where its bytes go and how many the server holds. */
  upload_url?: string | null;
  offset?: number;
  length?: number;
}

/** What sending an action came to. */
export type Outcome =
  | { kind: "done" }
  | { kind: "retry"; error: string; status?: number; retryAfterMs?: number; reason?: string }
  | { kind: "park"; error: string; status: number; items?: string[]; reason?: string }
  | { kind: "login" };

export interface OutboxDeps {
  list(): Promise<OutboxAction[]>;
  save(action: OutboxAction): Promise<void>;
  /** Remove acknowledged actions. */
  remove(actions: OutboxAction[]): Promise<void>;
  /** Send `batch` (one action, or consecutive answers sent as one request). */
  perform(batch: OutboxAction[]): Promise<Outcome>;
  now(): number;
}

export const BACKOFF_BASE_MS = 2_000;
export const BACKOFF_CAP_MS = 5 * 60_000;
/** The server takes at most this many answers per request. */
export const MAX_ANSWER_BATCH = 200;

/** Wait before attempt `attempts + 1`: doubling from 2 s, capped at 5 minutes. */
export function backoffMs(attempts: number): number {
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
}

/** Actions of each audit in order. */
export function byAudit(actions: OutboxAction[]): Map<string, OutboxAction[]> {
  const groups = new Map<string, OutboxAction[]>();
  for (const action of [...actions].sort((a, b) => a.seq - b.seq)) {
    const group = groups.get(action.audit_id) ?? [];
    group.push(action);
    groups.set(action.audit_id, group);
  }
  return groups;
}

/** The head of an audit's queue, with consecutive answers joined into one request. */
export function nextBatch(queue: OutboxAction[]): OutboxAction[] {
  const head = queue[0];
  if (!head || head.kind !== "answers") return head ? [head] : [];
  const batch: OutboxAction[] = [];
  for (const action of queue) {
    if (action.kind !== "answers" || action.state !== "queued" || batch.length >= MAX_ANSWER_BATCH) break;
    batch.push(action);
  }
  return batch;
}

export interface DrainReport {
  sent: number;
  retrying: number;
  parked: number;
  loginNeeded: boolean;
  /** Earliest moment a timed drain has something to retry (null: nothing waits). */
  nextAt: number | null;
}

/**
 * Send what can be sent now, audit by audit, in order. `force` ignores backoff (the phone came online,
 * became visible, or the user asked). A parked action holds back the rest of its audit until resolved.
 */
export async function drain(deps: OutboxDeps, force = false): Promise<DrainReport> {
  const report: DrainReport = { sent: 0, retrying: 0, parked: 0, loginNeeded: false, nextAt: null };
  const waitUntil = (at: number) => {
    report.nextAt = report.nextAt === null ? at : Math.min(report.nextAt, at);
  };
  for (const queue of byAudit(await deps.list()).values()) {
    while (queue.length) {
      const head = queue[0] as OutboxAction;
      if (head.state === "parked") {
        report.parked += 1;
        break;
      }
      if (!force && head.next_at > deps.now()) {
        waitUntil(head.next_at);
        break;
      }
      const batch = nextBatch(queue);
      const outcome = await deps.perform(batch);
      if (outcome.kind === "done") {
        await deps.remove(batch);
        queue.splice(0, batch.length);
        report.sent += batch.length;
        continue;
      }
      if (outcome.kind === "login") {
        report.loginNeeded = true;
        return report;
      }
      for (const action of batch) {
        action.attempts += 1;
        action.last_error = outcome.error;
        action.last_reason = outcome.reason ?? null;
        action.last_status = outcome.kind === "park" ? outcome.status : (outcome.status ?? null);
        if (outcome.kind === "park") {
          action.state = "parked";
          if (outcome.items) action.problem_items = outcome.items;
        } else {
          action.next_at = deps.now() + Math.max(outcome.retryAfterMs ?? 0, backoffMs(action.attempts));
        }
        await deps.save(action);
      }
      if (outcome.kind === "park") report.parked += 1;
      else {
        report.retrying += 1;
        waitUntil(head.next_at);
      }
      break;
    }
  }
  return report;
}

/** Put a parked action back in the queue (the user fixed the cause, or asked to retry). */
export function requeued(action: OutboxAction): OutboxAction {
  return { ...action, state: "queued", next_at: 0, last_error: null, last_reason: null, last_status: null, problem_items: [] };
}

/** How a failed request is handled: 5xx, 408, 429 and no answer retry; other 4xx park. */
export function classify(status: number | null, error: string): Outcome {
  if (status === null || status >= 500 || status === 408 || status === 429) {
    return status === null ? { kind: "retry", error } : { kind: "retry", error, status };
  }
  if (status === 401) return { kind: "login" };
  return { kind: "park", error, status };
}
