import { createApp } from "vue";
import App from "./App.vue";
import { loadSession } from "./auth/session.ts";
import { i18n, preferredLanguage, setLanguage } from "./i18n.ts";
import { registerServiceWorker } from "./pwa/update.ts";
import { createAppRouter } from "./router.ts";
import { readSetting } from "./storage/db.ts";
import { sessionStarted } from "./sync/lifecycle.ts";
import "./styles.css";

async function start(): Promise<void> {
  const [session, language] = await Promise.all([loadSession(), readSetting<string | null>("language", null)]);
  setLanguage(preferredLanguage(language ?? session?.user.language ?? null, navigator.languages ?? []));
  const router = createAppRouter();
  createApp(App).use(i18n).use(router).mount("#app");
  registerServiceWorker(router);
  if (session) await sessionStarted(session.user.id);
}

void start();
