// Why a step is waiting or was refused, in the user's language (problem+json text itself is English).
import { useI18n } from "vue-i18n";
import type { OutboxAction } from "../sync/outbox.ts";

export function useReasons() {
  const { t, te } = useI18n();
  return (action: Pick<OutboxAction, "last_reason" | "last_error">): string => {
    const reason = action.last_reason ?? (action.last_error === "network" ? "network" : null);
    if (!reason && !action.last_error) return "";
    const key = `common.errors.${reason ?? "unknown"}`;
    return te(key) ? t(key) : t("common.errors.unknown");
  };
}
