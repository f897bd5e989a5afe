// Service-worker registration. An update is applied only while no audit is open (a reload in the middle
// of a checklist would be lost time, and old and new code must not share one audit's outbox).
import { shallowRef } from "vue";
import type { Router } from "vue-router";
import { Workbox } from "workbox-window";

/** A new version is installed and waiting. */
export const updateWaiting = shallowRef(false);

export function registerServiceWorker(router: Router): void {
  if (!("serviceWorker" in navigator) || import.meta.env.DEV) return;
  const wb = new Workbox("/app/sw.js", { scope: "/app/" });
  let timer: ReturnType<typeof setTimeout> | null = null;
  // Asked while the old worker is still answering the new screen's requests, Chromium defers the activation
  // and can miss the moment the worker is free: ask once the screen has settled.
  const applyWhenIdle = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      if (!updateWaiting.value || router.currentRoute.value.meta.auditOpen) return;
      wb.addEventListener("controlling", () => window.location.reload());
      wb.messageSkipWaiting();
    }, 1_500);
  };
  wb.addEventListener("waiting", () => {
    updateWaiting.value = true;
    applyWhenIdle();
  });
  router.afterEach(() => applyWhenIdle());
  void wb.register();
}
