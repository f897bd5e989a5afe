// A checklist as the server serves it (one language). The rules read only the structural fields, so a
// definition in every language (the golden vectors) fits these types too.

export type ItemType = "yes_no" | "rating" | "number" | "single_choice" | "multi_choice" | "text" | "photo" | "timer";

export interface PhotoPolicy {
  policy: "none" | "optional" | "required" | "required_on_fail";
  min: number;
  max: number;
}

export interface ShowIf {
  item: string;
  equals?: unknown;
  in?: unknown[] | null;
  failed?: boolean | null;
}

export interface ServedOption {
  id: string;
  text?: unknown;
  passing?: boolean;
}

export interface ServedItem {
  id: string;
  type: ItemType;
  text?: unknown;
  guidance?: unknown;
  weight?: number;
  severity?: "minor" | "major" | "critical";
  critical?: boolean;
  na_allowed?: boolean;
  required?: boolean;
  scored?: boolean;
  photo?: Partial<PhotoPolicy> | string;
  show_if?: ShowIf | null;
  options?: ServedOption[] | null;
  scale?: { min: number; max: number; pass_at: number } | null;
  pass_rule?: string | null;
  unit?: string | null;
  applies_to?: { branch_types?: string[] | null; channels?: string[] | null } | null;
}

export interface ServedSection {
  id: string;
  title?: unknown;
  weight?: number;
  items: ServedItem[];
}

export interface ServedChecklist {
  key: string;
  version?: number;
  language?: string;
  title?: unknown;
  description?: unknown;
  channel?: string;
  sections: ServedSection[];
  grade_bands?: { grade: string; min_score: number }[];
}

/** An answer as the rules see it. */
export interface RuleAnswer {
  value?: unknown;
  na?: boolean;
}

export type Outcome = "pass" | "fail" | "na" | "unanswered" | "unscored";
