// The organisation for a component, with the formatting helpers bound to the reader's language.
import { computed, onMounted, shallowRef } from "vue";
import { useI18n } from "vue-i18n";
import { formatDate, formatDateTime, formatScore } from "./format.ts";
import { branchLabel, organisation, type Organisation, zoneOf } from "./org.ts";

export function useOrg() {
  const { locale } = useI18n();
  const org = shallowRef<Organisation | null>(null);
  onMounted(async () => {
    try {
      org.value = await organisation();
    } catch {
      org.value = null;
    }
  });
  const lang = computed(() => String(locale.value));
  return {
    org,
    zone: (branchId: string | null | undefined) => zoneOf(org.value, branchId),
    branchName: (branchId: string | null | undefined) => branchLabel(org.value, branchId),
    dateTime: (iso: string | null | undefined, branchId: string | null | undefined) => formatDateTime(iso, zoneOf(org.value, branchId), lang.value),
    date: (iso: string | null | undefined, branchId: string | null | undefined) => formatDate(iso, zoneOf(org.value, branchId), lang.value),
    score: (value: number | null | undefined) => formatScore(value, lang.value),
    lang,
  };
}
