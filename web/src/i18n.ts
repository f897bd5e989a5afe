// Messages are split per area (common, field, console, admin) and per language, so each area's screens
// add their own files; they are precompiled by @intlify/unplugin-vue-i18n (no runtime compiler, CSP-safe).
import { createI18n } from "vue-i18n";

export const LANGUAGES = ["zh-CN", "en", "es"] as const;
export type Language = (typeof LANGUAGES)[number];
export const DEFAULT_LANGUAGE: Language = "zh-CN";

type Messages = Record<string, unknown>;

// The field app's areas ship in the main bundle; every other area is fetched with its screens.
const eager = import.meta.glob<Messages>("./locales/*/{common,checklist,field}.json", { eager: true, import: "default" });
const lazy = import.meta.glob<Messages>(["./locales/*/*.json", "!./locales/*/{common,checklist,field}.json"], {
  import: "default",
});

function pathParts(path: string): { language: string; area: string } {
  const match = /\.\/locales\/([^/]+)\/([^/]+)\.json$/.exec(path);
  if (!match) throw new Error(`unexpected locale file ${path}`);
  return { language: match[1] ?? "", area: match[2] ?? "" };
}

function eagerMessages(): Record<string, Messages> {
  const byLanguage: Record<string, Messages> = {};
  for (const [path, messages] of Object.entries(eager)) {
    const { language } = pathParts(path);
    byLanguage[language] = { ...(byLanguage[language] ?? {}), ...messages };
  }
  return byLanguage;
}

export function normaliseLanguage(tag: string | null | undefined): Language | null {
  const primary = (tag ?? "").trim().split(/[-_]/)[0]?.toLowerCase();
  if (primary === "zh") return "zh-CN";
  if (primary === "en") return "en";
  if (primary === "es") return "es";
  return null;
}

export function preferredLanguage(stored: string | null, navigatorLanguages: readonly string[]): Language {
  const fromStore = normaliseLanguage(stored);
  if (fromStore) return fromStore;
  for (const tag of navigatorLanguages) {
    const language = normaliseLanguage(tag);
    if (language) return language;
  }
  return DEFAULT_LANGUAGE;
}

export const i18n = createI18n({
  legacy: false,
  locale: DEFAULT_LANGUAGE,
  fallbackLocale: "en",
  messages: eagerMessages() as never,
  missingWarn: false,
  fallbackWarn: false,
});

const loadedAreas = new Set<string>(["common", "checklist", "field"]);

/** Load one area's messages (e.g. "console") in every language before its screens show. */
export async function loadArea(area: string): Promise<void> {
  if (loadedAreas.has(area)) return;
  const loads = Object.entries(lazy)
    .filter(([path]) => pathParts(path).area === area)
    .map(async ([path, load]) => {
      i18n.global.mergeLocaleMessage(pathParts(path).language, (await load()) as never);
    });
  await Promise.all(loads);
  loadedAreas.add(area);
}

export function setLanguage(language: Language): void {
  i18n.global.locale.value = language;
  document.documentElement.lang = language;
}
