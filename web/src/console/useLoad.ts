// A screen's data: loaded once on mount, reloaded on demand, its failure kept for ErrorNotice.
import { onMounted, ref, shallowRef, type Ref, type ShallowRef } from "vue";

export interface Loaded<T> {
  data: ShallowRef<T | null>;
  error: Ref<unknown>;
  loading: Ref<boolean>;
  reload: () => Promise<void>;
}

export function useLoad<T>(load: () => Promise<T>, { immediate = true } = {}): Loaded<T> {
  const data = shallowRef<T | null>(null);
  const error = ref<unknown>(null);
  const loading = ref(false);
  async function reload(): Promise<void> {
    loading.value = true;
    error.value = null;
    try {
      data.value = await load();
    } catch (caught) {
      error.value = caught;
    } finally {
      loading.value = false;
    }
  }
  if (immediate) onMounted(reload);
  return { data, error, loading, reload };
}

/** Run one command (release, appeal, ...), keeping its failure and whether it is under way. */
export function useCommand() {
  const error = ref<unknown>(null);
  const busy = ref(false);
  async function run<T>(command: () => Promise<T>): Promise<T | undefined> {
    busy.value = true;
    error.value = null;
    try {
      return await command();
    } catch (caught) {
      error.value = caught;
      return undefined;
    } finally {
      busy.value = false;
    }
  }
  return { error, busy, run };
}
