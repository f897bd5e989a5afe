// The field user's visits, branches and checklists: read from IndexedDB first, refreshed from the server
// when it answers. Screens never wait for the network to show what the phone already has.
import { apiCall, apiJson } from "../api/client.ts";
import type { ServedChecklist } from "../rules/types.ts";
import { userDb } from "../storage/db.ts";
import type { AssignmentRecord, AuditRecord, BranchRecord, KeptChecklist } from "../storage/records.ts";
import type { OutboxAction } from "../sync/outbox.ts";

interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

async function allPages<T>(path: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const separator = path.includes("?") ? "&" : "?";
    const page: Page<T> = await apiJson<Page<T>>(`${path}${separator}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/** Fetch my visits and the branches they are at; keeps what the phone had when offline. */
export async function refreshVisits(userId: string): Promise<void> {
  const [assignments, branches] = await Promise.all([
    allPages<AssignmentRecord>("/assignments?mine=true"),
    allPages<BranchRecord>("/branches"),
  ]);
  const db = await userDb(userId);
  const tx = db.transaction(["assignments", "branches"], "readwrite");
  await tx.objectStore("assignments").clear();
  for (const assignment of assignments) await tx.objectStore("assignments").put(assignment);
  for (const branch of branches) await tx.objectStore("branches").put(branch);
  await tx.done;
}

export async function localVisits(userId: string): Promise<{ assignments: AssignmentRecord[]; branches: Map<string, BranchRecord>; audits: AuditRecord[]; actions: OutboxAction[]; kept: KeptChecklist[] }> {
  const db = await userDb(userId);
  const [assignments, branches, audits, actions, kept] = await Promise.all([
    db.getAll("assignments"), db.getAll("branches"), db.getAll("audits"), db.getAll("outbox"), db.getAll("checklists"),
  ]);
  return { assignments, branches: new Map(branches.map((b) => [b.id, b])), audits, actions, kept };
}

export function keptId(key: string, language: string, version?: number): string {
  return version === undefined ? `${key}@current@${language}` : `${key}@${version}@${language}`;
}

/** Download a checklist (current version, or a pinned one) and keep it for offline use. */
export async function keepChecklist(userId: string, key: string, language: string, version?: number): Promise<KeptChecklist> {
  const db = await userDb(userId);
  const id = keptId(key, language, version);
  const existing = await db.get("checklists", id);
  const path = version === undefined ? `/checklists/${key}?lang=${language}` : `/checklists/${key}/versions/${version}?lang=${language}`;
  const headers: Record<string, string> = existing?.etag ? { "If-None-Match": existing.etag } : {};
  const response = await apiCall(path, { headers, accept: [304] });
  if (response.status === 304 && existing) return existing;
  const body = (await response.json()) as ServedChecklist & { version: number };
  const kept: KeptChecklist = {
    id, key, version: body.version, language, etag: response.headers.get("ETag"), body, fetched_at: new Date().toISOString(),
  };
  await db.put("checklists", kept);
  // The same version is also kept under its number, for audits pinned to it.
  if (version === undefined) await db.put("checklists", { ...kept, id: keptId(key, language, body.version) });
  return kept;
}

/** The checklist an audit runs on: its pinned version in the wanted language, else in any kept language. */
export async function checklistForAudit(userId: string, audit: AuditRecord, language: string): Promise<KeptChecklist | null> {
  const db = await userDb(userId);
  const wanted = await db.get("checklists", keptId(audit.checklist_key, language, audit.checklist_version));
  if (wanted) return wanted;
  try {
    return await keepChecklist(userId, audit.checklist_key, language, audit.checklist_version);
  } catch {
    const all = await db.getAll("checklists");
    return all.find((c) => c.key === audit.checklist_key && c.version === audit.checklist_version) ?? null;
  }
}

export type VisitState = "not_started" | "in_progress" | "ready" | "sending" | "sent" | "returned";

/** The state a visit shows in the list. */
export function visitState(audit: AuditRecord | undefined, actions: OutboxAction[]): VisitState {
  if (!audit) return "not_started";
  const mine = actions.filter((a) => a.audit_id === audit.id);
  if (audit.status === "returned") return "returned";
  if (audit.status === "submitted" || audit.status === "released") return mine.length ? "sending" : "sent";
  if (audit.status === "ready") return "sending";
  return "in_progress";
}

/** Overdue, today, this week or later, by the branch's own calendar. */
export function visitBucket(assignment: AssignmentRecord, timezone: string, now: Date): "overdue" | "today" | "week" | "later" {
  const end = new Date(assignment.window_end);
  const start = new Date(assignment.window_start);
  if (end < now) return "overdue";
  const day = (d: Date) => new Intl.DateTimeFormat("en-CA", { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
  const today = day(now);
  if (day(start) <= today) return "today";
  const weekAhead = day(new Date(now.getTime() + 7 * 86_400_000));
  return day(start) <= weekAhead ? "week" : "later";
}

/** A time window in the branch's time zone, in the user's language. */
/** One planned visit as this phone keeps it: the visit, its branch, its audit if started here, and its
 * checklist in `language` if kept (all null for a visit the phone does not have). */
export async function keptVisit(userId: string, assignmentId: string, language: string): Promise<{
  assignment: AssignmentRecord | null;
  branch: BranchRecord | null;
  audit: AuditRecord | null;
  kept: KeptChecklist | null;
}> {
  const db = await userDb(userId);
  const assignment = (await db.get("assignments", assignmentId)) ?? null;
  if (!assignment) return { assignment, branch: null, audit: null, kept: null };
  return {
    assignment,
    branch: (await db.get("branches", assignment.branch_id)) ?? null,
    audit: (await db.getAll("audits")).find((a) => a.assignment_id === assignmentId) ?? null,
    kept: (await db.get("checklists", keptId(assignment.checklist_key, language))) ?? null,
  };
}

/** A visit's window in the branch's zone; a window within one day names the day once. */
export function formatWindow(startIso: string, endIso: string, timezone: string, locale: string): string {
  const format = new Intl.DateTimeFormat(locale, { timeZone: timezone, month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  return format.formatRange(new Date(startIso), new Date(endIso));
}


export function formatMoment(iso: string, timezone: string | undefined, locale: string): string {
  return new Intl.DateTimeFormat(locale, { ...(timezone ? { timeZone: timezone } : {}), dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

/** Metres between two points (the server's haversine). */
export function distanceM(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const r = 6_371_000;
  const rad = (deg: number) => (deg * Math.PI) / 180;
  const dLat = rad(b.lat - a.lat);
  const dLon = rad(b.lon - a.lon);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(h));
}

/** Refresh sent audits from the server: a reviewer may have returned or released one. */
export async function refreshSentAudits(userId: string): Promise<void> {
  const db = await userDb(userId);
  const audits = (await db.getAll("audits")).filter((a) => a.status === "submitted" || a.status === "released" || a.status === "returned");
  for (const audit of audits) {
    const server = await apiJson<{ status: string; returned_comment?: string | null; findings?: { id: string; item_id: string; severity: string; item_text?: string }[] }>(`/audits/${audit.id}`);
    const status = server.status as AuditRecord["status"];
    if (status !== audit.status || (server.returned_comment ?? null) !== audit.returned_comment) {
      await db.put("audits", { ...audit, status: status === "in_progress" ? "in_progress" : status, returned_comment: server.returned_comment ?? null, updated_at: new Date().toISOString() });
    }
  }
}
