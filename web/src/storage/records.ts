// What the phone keeps in IndexedDB. Plain types shared by the stores, the outbox and the screens.
import type { Assignment } from "../api/types.ts";

export interface UserRecord {
  id: string;
  username: string;
  display_name?: string;
  role: string;
  language?: string | null;
  branch_id?: string | null;
  region_id?: string | null;
}

export interface SessionRecord {
  user: UserRecord;
  access_token: string;
  refresh_token: string;
  /** Epoch ms when the access token stops working (by the phone's clock, with a margin). */
  access_expires_at: number;
  /** True when the refresh token was refused: the user must log in again; the queue is kept. */
  needs_login: boolean;
  /** True after an admin's password reset: nothing but the password change is allowed until it is done. */
  password_change_required?: boolean;
}

/** A visit as the server serves it, stored as it came. */
export type AssignmentRecord = Assignment;

export interface BranchRecord {
  id: string;
  code: string;
  name: string;
  address?: string | null;
  location?: { lat: number; lon: number } | null;
  geofence_m?: number;
  timezone: string;
  branch_type?: string | null;
}

export interface KeptChecklist {
  /** `${key}@${language}`: the version an audit started offline will run. */
  id: string;
  key: string;
  version: number;
  language: string;
  etag: string | null;
  body: import("../rules/types.ts").ServedChecklist;
  fetched_at: string;
}

export type LocalAuditStatus = "in_progress" | "ready" | "submitted" | "released" | "returned";

export interface CheckinRecord {
  lat: number | null;
  lon: number | null;
  accuracy_m: number | null;
  distance_m: number | null;
  at: string;
  /** Why the inspector started anyway (no fix, poor accuracy or outside the geofence). */
  reason: string | null;
}

export interface AuditRecord {
  id: string;
  assignment_id: string | null;
  branch_id: string;
  checklist_key: string;
  checklist_version: number;
  language: string;
  channel: string;
  covert: boolean;
  started_at: string;
  status: LocalAuditStatus;
  checkin: CheckinRecord | null;
  result: SubmitResultRecord | null;
  returned_comment: string | null;
  updated_at: string;
}

export interface SubmitResultRecord {
  audit_id: string;
  status: string;
  score: number | null;
  grade: string | null;
  critical_failed: boolean;
  sections: { id: string; score: number | null; max: number }[];
  findings: { id: string; item_id: string; severity: string; item_text?: string }[];
}

export interface AnswerRecord {
  audit_id: string;
  item_id: string;
  value: unknown;
  na: boolean;
  note: string | null;
  fixed_on_spot: boolean;
  answered_at: string;
  /** A timer's start and stop (epoch ms), kept so a reload while the camera is open loses nothing. */
  timer?: { started_at: number | null; stopped_at: number | null } | null;
}

export interface PhotoRecord {
  id: string;
  audit_id: string;
  item_id: string;
  blob: Blob;
  name: string;
  type: string;
  size: number;
  sha256: string;
  client_captured_at: string;
  client_location: { lat: number; lon: number; accuracy_m: number } | null;
  server_photo_id: string | null;
  created_at: string;
}
