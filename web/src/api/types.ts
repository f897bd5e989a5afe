// Shapes the API serves that more than one part of the app reads (the field app stores, the console and
// the admin show them): one declaration each, so a field the server adds is added once.

/** A planned visit (GET /assignments). */
export interface Assignment {
  id: string;
  program_id: string;
  branch_id: string;
  region_id: string;
  checklist_key: string;
  channel: string;
  covert: boolean;
  window_start: string;
  window_end: string;
  status: string;
  audit_id: string | null;
  assignee_id: string | null;
}

/** One entry of the tamper-evident trail (GET /trail). */
export interface TrailEntry {
  id: string;
  at: string;
  actor_id: string | null;
  actor_role: string | null;
  action: string;
  entity_type: string | null;
  entity_id: string | null;
  summary: Record<string, unknown>;
  seq: number | null;
  sealed: boolean;
  client_address?: string | null;
}
