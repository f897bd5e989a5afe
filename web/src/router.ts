// Every route of the app in one place. `meta.roles` says who may open a screen; the home screen depends
// on the role (field roles get their visits; the console adds its homes to HOME_BY_ROLE).
import { watch } from "vue";
import { createRouter, createWebHistory, type RouteLocationRaw, type RouteRecordRaw } from "vue-router";
import { currentSession, loadSession } from "./auth/session.ts";
import { adminRoutes } from "./admin/routes.ts";
import { consoleRoutes } from "./console/routes.ts";
import { loadArea } from "./i18n.ts";

export const FIELD_ROLES = ["inspector", "mystery_shopper"] as const;

declare module "vue-router" {
  interface RouteMeta {
    /** Roles allowed; absent: anyone signed in. */
    roles?: readonly string[];
    /** Reachable without signing in. */
    public?: boolean;
    /** The route title's message key. */
    title?: string;
    /** An audit is open on this screen: a service-worker update waits. */
    auditOpen?: boolean;
  }
}

export const HOME_BY_ROLE: Record<string, RouteLocationRaw> = {
  inspector: { name: "visits" },
  mystery_shopper: { name: "visits" },
  branch_head: { name: "branch-home" },
  regional_manager: { name: "region-home" },
  compliance: { name: "review-queue" },
  admin: { name: "admin-users" },
};

const field = { roles: FIELD_ROLES };

export const routes: RouteRecordRaw[] = [
  { path: "/", name: "home", redirect: () => homeRoute() },
  { path: "/login", name: "login", component: () => import("./field/LoginView.vue"), meta: { public: true, title: "common.login.title" } },
  { path: "/no-screens", name: "no-screens", component: () => import("./field/NoScreensView.vue"), meta: { title: "common.noScreens.title" } },
  { path: "/visits", name: "visits", component: () => import("./field/VisitsView.vue"), meta: { ...field, title: "field.visits.title" } },
  { path: "/visits/:assignmentId", name: "brief", component: () => import("./field/BriefView.vue"), props: true, meta: { ...field, title: "field.brief.title" } },
  { path: "/visits/:assignmentId/check-in", name: "checkin", component: () => import("./field/CheckinView.vue"), props: true, meta: { ...field, title: "field.checkin.title" } },
  { path: "/audits/:auditId", name: "runner", component: () => import("./field/RunnerView.vue"), props: true, meta: { ...field, title: "field.runner.title", auditOpen: true } },
  { path: "/audits/:auditId/review", name: "review", component: () => import("./field/ReviewView.vue"), props: true, meta: { ...field, title: "field.review.title", auditOpen: true } },
  { path: "/audits/:auditId/result", name: "result", component: () => import("./field/ResultView.vue"), props: true, meta: { ...field, title: "field.result.title" } },
  { path: "/sent", name: "sent", component: () => import("./field/SentView.vue"), meta: { ...field, title: "field.sent.title" } },
  { path: "/sync", name: "sync", component: () => import("./field/SyncView.vue"), meta: { ...field, title: "field.sync.title" } },
  { path: "/password", name: "password", component: () => import("./field/PasswordView.vue"), meta: { title: "common.password.title" } },
  { path: "/settings", name: "settings", component: () => import("./field/SettingsView.vue"), meta: { title: "common.settings.title" } },
  ...consoleRoutes,
  ...adminRoutes,
  { path: "/:rest(.*)*", name: "not-found", redirect: () => homeRoute() },
];

export function homeRoute(): RouteLocationRaw {
  const session = currentSession.value;
  if (!session) return { name: "login" };
  return HOME_BY_ROLE[session.user.role] ?? { name: "no-screens" };
}

export function createAppRouter() {
  const router = createRouter({ history: createWebHistory("/app/"), routes });
  router.beforeEach(async (to) => {
    const session = currentSession.value ?? (await loadSession());
    if (to.meta.public) return true;
    if (!session) return { name: "login", query: { next: to.fullPath } };
    // An admin's navigation names the admin screens on every page, so their messages load first.
    if (session.user.role === "admin") await loadArea("admin");
    // A temporary password from an admin: the change screen and nothing else until it is changed.
    if (session.password_change_required && to.name !== "password") return { name: "password" };
    if (to.meta.roles && !to.meta.roles.includes(session.user.role)) return homeRoute();
    return true;
  });
  // Any call answered "password change required" marks the session; the user goes to the change screen.
  watch(currentSession, (session) => {
    if (session?.password_change_required && router.currentRoute.value.name !== "password") {
      void router.replace({ name: "password" });
    }
  });
  return router;
}
