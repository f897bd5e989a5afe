// The admin screens' calls and the API's shapes they read (see /openapi.json): people, regions, branches,
// checklists, webhooks, handler failures, programs and visits.
import { apiJson } from "../api/client.ts";
import { ApiError } from "../api/problem.ts";
import type { ServedChecklist } from "../rules/types.ts";
import type { Assignment } from "../api/types.ts";

export type { Assignment, TrailEntry } from "../api/types.ts";

export const ROLES = ["inspector", "mystery_shopper", "branch_head", "regional_manager", "compliance", "admin", "integration"] as const;
export const LANGUAGE_CHOICES = ["zh-CN", "en", "es"] as const;

export interface User {
  id: string;
  username: string;
  display_name: string;
  role: string;
  region_id: string | null;
  branch_id: string | null;
  home_branch_id: string | null;
  language: string;
  email: string | null;
  active: boolean;
  created_at: string;
}

export interface SessionRow {
  id: string;
  created_at: string;
  expires_at: string;
  client_address: string | null;
}


export interface OpeningHours {
  open: string;
  close: string;
  weekdays: number[];
}

export interface BranchRecord {
  id: string;
  code: string;
  name: string;
  region_id: string;
  address: string;
  location: { lat: number; lon: number };
  geofence_m: number;
  timezone: string;
  branch_type: string;
  opening_hours: OpeningHours;
  head_user_id: string | null;
  created_at: string;
  closed_at: string | null;
  closed_reason: string | null;
}

export interface RegionRecord {
  id: string;
  code: string;
  name: string;
  manager_user_id: string | null;
  created_at: string;
}


export interface OpenWork {
  assignments: Assignment[];
  audits: { id: string; status: string; program_id: string | null; started_at: string | null }[];
  rectifications: { id: string; status: string; due_at: string | null }[];
}

export interface ChecklistSummary {
  key: string;
  version: number;
  title: string;
  channel: string;
  updated_at: string;
  retired: boolean;
}

export interface ChecklistVersion {
  key: string;
  version: number;
  content_hash: string;
  published_at: string;
  published_by: string | null;
  current: boolean;
}

export interface DefinitionProblem {
  loc: (string | number)[];
  path: string;
  msg: string;
  line: number | null;
}

export interface Validation {
  valid: boolean;
  key: string | null;
  item_count: number | null;
  errors: DefinitionProblem[];
  preview: Record<string, ServedChecklist> | null;
}

export interface PublishOutcome {
  key: string;
  version: number;
  created: boolean;
  item_count: number;
}

export interface Webhook {
  id: string;
  url: string;
  event_types: string[];
  description: string | null;
  active: boolean;
  consecutive_failures: number;
  created_at: string;
  disabled_at: string | null;
  disabled_reason: string | null;
}

export interface Delivery {
  id: string;
  event_id: string;
  event_type: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  created_at: string;
  delivered_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
}

export interface HandlerFailure {
  id: string;
  handler: string;
  event_id: string;
  event_type: string;
  subject: string;
  seq: number;
  attempts: number;
  status: string;
  next_attempt_at: string | null;
  last_error: string | null;
  first_failed_at: string | null;
  updated_at: string | null;
}

export interface Program {
  id: string;
  name: string;
  checklist_key: string;
  branch_ids: string[];
  starts_on: string;
  ends_on: string;
  covert: boolean;
  channel: string;
  assignments_generated: boolean;
  cancelled_at: string | null;
  cancelled_reason: string | null;
}

export function patchJson<T>(path: string, json: unknown): Promise<T> {
  return apiJson<T>(path, { method: "PATCH", json });
}

/** A checklist definition sent as it was uploaded: YAML unless the file is JSON. */
export function sendDefinition<T>(path: string, text: string, fileName: string): Promise<T> {
  const json = fileName.toLowerCase().endsWith(".json");
  return apiJson<T>(path, { method: "POST", body: text, headers: { "Content-Type": json ? "application/json" : "application/yaml" } });
}

/** The field names a 422 named (the last string of each loc), with the server's message for each. */
export function fieldProblems(error: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(error instanceof ApiError) || error.status !== 422) return out;
  for (const problem of error.problem?.errors ?? []) {
    const name = [...problem.loc].reverse().find((part) => typeof part === "string" && part !== "body");
    if (typeof name === "string" && !(name in out)) out[name] = problem.msg;
  }
  return out;
}

/** Every IANA time zone this browser knows (empty on an old browser: then only the server checks). */
export function knownTimeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  try {
    return intl.supportedValuesOf?.("timeZone") ?? [];
  } catch {
    return [];
  }
}

export function isKnownTimeZone(zone: string, known: readonly string[]): boolean {
  if (known.includes(zone)) return true;
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return zone.includes("/") || zone === "UTC";
  } catch {
    return false;
  }
}
