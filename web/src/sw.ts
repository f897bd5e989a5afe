/// <reference lib="webworker" />
// The service worker: precache the app shell, answer navigations under /app/ with index.html, and never
// cache API answers (IndexedDB holds the field data). A new version waits until the page says no audit is
// open (it posts SKIP_WAITING); until then the old precache keeps serving.
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute } from "workbox-precaching";
import { NavigationRoute, registerRoute } from "workbox-routing";

declare const self: ServiceWorkerGlobalScope;

precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();
registerRoute(new NavigationRoute(createHandlerBoundToURL("/app/index.html"), { allowlist: [/^\/app\//] }));

self.addEventListener("message", (event: ExtendableMessageEvent) => {
  if ((event.data as { type?: string } | null)?.type === "SKIP_WAITING") void self.skipWaiting();
});
