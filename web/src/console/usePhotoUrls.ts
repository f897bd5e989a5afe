// Object URLs for many server photos at once (thumbnails fetched with the bearer), revoked on unmount.
import { onBeforeUnmount, shallowRef } from "vue";
import { photoObjectUrl } from "./api.ts";

export function usePhotoUrls() {
  const urls = shallowRef<Map<string, string>>(new Map());
  async function load(ids: string[]): Promise<void> {
    const missing = ids.filter((id) => !urls.value.has(id));
    const loaded = await Promise.all(missing.map(async (id) => [id, await photoObjectUrl(id).catch(() => "")] as const));
    const next = new Map(urls.value);
    for (const [id, url] of loaded) if (url) next.set(id, url);
    urls.value = next;
  }
  onBeforeUnmount(() => {
    for (const url of urls.value.values()) URL.revokeObjectURL(url);
  });
  return { urls, load };
}
