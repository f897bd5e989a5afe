// The branch head's own branch (from their session): every branch screen reads only it.
import { computed } from "vue";
import { currentSession } from "../auth/session.ts";

export function useMyBranch() {
  return computed(() => currentSession.value?.user.branch_id ?? "");
}
