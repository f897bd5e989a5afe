// What the checklist renderer shows and emits. The same renderer serves the phone's runner, the admin's
// preview (mode "preview") and the reviewer's read-only view (mode "readonly").

export type RendererMode = "edit" | "preview" | "readonly";

export interface ItemAnswer {
  value: unknown;
  na: boolean;
  note: string | null;
  fixed_on_spot: boolean;
  timer?: { started_at: number | null; stopped_at: number | null } | null;
}

export interface ItemPhoto {
  id: string;
  /** An object URL or a server URL for the thumbnail. */
  src: string;
  name: string;
  /** upload progress 0..1, or null when it is on the server. */
  progress: number | null;
}

export type AnswerChange = Partial<ItemAnswer>;
