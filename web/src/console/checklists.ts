// The published checklists with their titles in the reader's language, read once per user and language:
// people choose and read "网点服务质量检查", never the key "branch-service".
import { computed, shallowRef, watch } from "vue";
import { useI18n } from "vue-i18n";
import { currentSession } from "../auth/session.ts";
import type { ServedChecklist } from "../rules/types.ts";
import { getJson } from "./api.ts";

export interface ChecklistTitle {
  key: string;
  version: number;
  title: string;
  retired?: boolean;
}

let cached: { id: string; value: Promise<ChecklistTitle[]> } | null = null;

function checklistTitles(language: string): Promise<ChecklistTitle[]> {
  const id = `${currentSession.value?.user.id ?? ""}:${language}`;
  if (!cached || cached.id !== id) {
    const value = getJson<ChecklistTitle[] | { items?: ChecklistTitle[] }>("/checklists", { lang: language }).then((lists) =>
      Array.isArray(lists) ? lists : (lists.items ?? []),
    );
    value.catch(() => {
      cached = null;
    });
    cached = { id, value };
  }
  return cached.value;
}

const itemTextCache = new Map<string, Promise<Map<string, string>>>();

/** A checklist's items in `language` (id → text) from its current version; empty when it cannot be read,
 * so a screen falls back to the id rather than failing. */
export function checklistItemTexts(key: string, language: string): Promise<Map<string, string>> {
  const id = `${currentSession.value?.user.id ?? ""}:${key}:${language}`;
  let texts = itemTextCache.get(id);
  if (!texts) {
    texts = getJson<ServedChecklist>(`/checklists/${encodeURIComponent(key)}`, { lang: language })
      .then((checklist) => new Map(checklist.sections.flatMap((s) => s.items.map((i): [string, string] => [i.id, typeof i.text === "string" ? i.text : i.id]))))
      .catch(() => new Map<string, string>());
    itemTextCache.set(id, texts);
  }
  return texts;
}

/** The checklists (empty until read, or when they cannot be read: a title then falls back to its key). */
export function useChecklists() {
  const { locale } = useI18n();
  const checklists = shallowRef<ChecklistTitle[]>([]);
  watch(
    locale,
    async (language) => {
      checklists.value = await checklistTitles(String(language)).catch(() => []);
    },
    { immediate: true },
  );
  const titles = computed(() => new Map(checklists.value.map((c) => [c.key, c.title])));
  return { checklists, checklistTitle: (key: string) => titles.value.get(key) ?? key };
}
