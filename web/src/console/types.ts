// The API's shapes as the console reads them (see /openapi.json); only the fields the screens use.

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export type AuditStatus = "in_progress" | "submitted" | "returned" | "released";
export type Severity = "minor" | "major" | "critical";

export interface AuditRow {
  id: string;
  branch_id: string;
  region_id: string;
  program_id: string | null;
  checklist_key: string;
  checklist_version: number;
  channel: "in_branch" | "phone" | "online";
  covert: boolean;
  status: AuditStatus;
  auditor?: { id?: string; display_name?: string; role?: string } | null;
  visit_date: string | null;
  started_at: string | null;
  submitted_at: string | null;
  released_at: string | null;
  score: number | null;
  grade: string | null;
  critical_failed: boolean | null;
  finding_counts: Record<string, number>;
  open_rectifications: number;
  flags: string[] | null;
}

export interface AuditAnswer {
  value?: unknown;
  na?: boolean;
  note?: string | null;
  fixed_on_spot?: boolean;
}

export interface AuditDetail extends AuditRow {
  answers: Record<string, AuditAnswer>;
  returned_comment: string | null;
  result: { sections?: { id: string; score: number | null; max: number; points?: number | null }[] } | null;
  findings: Finding[] | null;
  rectifications: Rectification[] | null;
  photos: Record<string, string[]> | null;
  checklist: import("../rules/types.ts").ServedChecklist | null;
  checkin?: { distance_m?: number | null; accuracy_m?: number | null; inside?: boolean | null } | null;
}

export interface Finding {
  id: string;
  audit_id: string;
  branch_id: string;
  item_id: string;
  section_id: string;
  severity: Severity;
  critical: boolean;
  photo_ids: string[];
  status: "open" | "overturned";
  fixed_on_spot: boolean;
  released_at: string | null;
  pending_appeal_id: string | null;
  item_text: string | null;
  appeal_until: string | null;
}

export interface Appeal {
  id: string;
  finding_id: string;
  audit_id: string;
  branch_id: string;
  reason: string;
  photo_ids: string[];
  status: "pending" | "upheld" | "overturned";
  filed_at: string;
  decided_at: string | null;
  comment: string | null;
}

export interface Extension {
  requested_due_at: string;
  reason: string;
  status: "pending" | "approved" | "refused";
  requested_at: string | null;
  decided_at: string | null;
  comment: string | null;
}

export interface HistoryEntry {
  action: string;
  at: string;
  from: string | null;
  to: string;
  comment: string | null;
  due_at: string | null;
}

export type RectificationStatus = "open" | "submitted" | "verified" | "rejected" | "cancelled";

export interface Rectification {
  id: string;
  finding_id: string;
  audit_id: string;
  branch_id: string;
  region_id: string | null;
  item_id: string;
  item_text: string;
  severity: string;
  status: RectificationStatus;
  overdue: boolean;
  due_at: string;
  timezone: string;
  note: string | null;
  photo_ids: string[];
  inspector_photo_ids: string[];
  extension: Extension | null;
  escalation_level: number;
  finding: { photo_ids: string[] } | null;
  created_at: string;
  closed_at: string | null;
  history?: HistoryEntry[];
}

export interface Photo {
  id: string;
  item_id: string | null;
  width: number;
  height: number;
  uploaded_at: string | null;
  captured_at: string | null;
  flags: string[];
  gps: { lat: number; lon: number; accuracy_m?: number | null } | null;
  client_location: { lat: number; lon: number; accuracy_m?: number | null } | null;
}

export interface Branch {
  id: string;
  code: string;
  name: string;
  region_id: string;
  timezone: string;
  head_user_id: string | null;
  location?: { lat: number; lon: number } | null;
  geofence_m?: number;
}

export interface Region {
  id: string;
  code?: string;
  name: string;
}

export interface NotificationItem {
  id: string;
  seq: number;
  kind: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  created_at: string;
  read_at: string | null;
}

export interface GradeSummary {
  audits: number;
  average_score: number | null;
  grades: Record<string, number>;
  critical_failed: number;
  critical_failure_rate: number | null;
}

export interface ScorecardRow extends GradeSummary {
  key: string;
  code: string | null;
  name: string | null;
  region_id: string | null;
  section_id: string | null;
}

export interface TrendPoint extends GradeSummary {
  period: string;
  period_start: string;
}

export interface RepeatFinding {
  branch_id: string;
  branch_code: string | null;
  branch_name: string | null;
  checklist_key: string;
  item_id: string;
  streak: number;
  current: boolean;
  audit_ids: string[];
  last_released_at: string;
}

export interface RectificationPerformance {
  total: number;
  verified: number;
  open: number;
  cancelled: number;
  on_time_closure_rate: number | null;
  mean_hours_to_verify: number | null;
  p90_hours_to_verify: number | null;
  overdue_now: number;
  escalated: number;
}

export interface RectificationRow extends RectificationPerformance {
  key: string;
  code: string | null;
  name: string | null;
}

export interface Program {
  id: string;
  name: string;
  checklist_key: string;
  branch_ids: string[];
  region_ids: string[];
  starts_on: string;
  ends_on: string;
  visits_per_branch: number;
  channel: "in_branch" | "phone" | "online";
  covert: boolean;
  assignments_generated: boolean;
  cancelled_at: string | null;
}

export interface UserRow {
  id: string;
  username: string;
  display_name: string;
  role: string;
}

export type { Assignment, TrailEntry } from "../api/types.ts";
