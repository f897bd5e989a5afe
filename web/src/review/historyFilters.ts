// The history screen's filters <-> the URL's query: every filter of GET /audits, kept in the address so a
// view can be bookmarked, shared and reloaded. Pure, tested with node --test.

export const HISTORY_FILTERS = [
  "branch_id",
  "region_id",
  "program_id",
  "auditor_id",
  "checklist_key",
  "checklist_version",
  "status",
  "from",
  "to",
  "min_score",
  "max_score",
  "grade",
  "critical_failed",
  "has_flag",
] as const;

export type HistoryFilter = (typeof HISTORY_FILTERS)[number];
export type Filters = Partial<Record<HistoryFilter, string>>;

type RawQuery = Record<string, unknown>;

/** The filters named in a route query (unknown keys and empty values dropped). */
export function filtersFromQuery(query: RawQuery): Filters {
  const filters: Filters = {};
  for (const key of HISTORY_FILTERS) {
    const raw = query[key];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (typeof value === "string" && value.trim() !== "") filters[key] = value.trim();
  }
  return filters;
}

/** The route query for filters plus an optional cursor. */
export function queryOf(filters: Filters, cursor: string | null = null): Record<string, string> {
  const query: Record<string, string> = {};
  for (const key of HISTORY_FILTERS) {
    const value = filters[key];
    if (value) query[key] = value;
  }
  if (cursor) query.cursor = cursor;
  return query;
}

/** The API query string of the filters (the same for GET /audits and the exports). */
export function apiSearch(filters: Filters, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(queryOf(filters))) params.set(key, value);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  const search = params.toString();
  return search ? `?${search}` : "";
}
