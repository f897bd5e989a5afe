// The console's routes (branch heads, regional managers, compliance), added to the app's one route table.
// Each screen loads the console's messages with it, so the field app's first load stays small.
import type { RouteRecordRaw } from "vue-router";
import { loadArea } from "../i18n.ts";
import { ANALYST_ROLES, BRANCH_ROLES, COMPLIANCE_ROLES, CONSOLE_ROLES, REGION_ROLES } from "./roles.ts";

type Loader = () => Promise<unknown>;
const withMessages = (load: Loader) => () => Promise.all([loadArea("console"), load()]).then(([, screen]) => screen as never);

const branch = { roles: BRANCH_ROLES, console: true };
const region = { roles: [...REGION_ROLES, ...COMPLIANCE_ROLES], console: true };
const compliance = { roles: COMPLIANCE_ROLES, console: true };
const analyst = { roles: ANALYST_ROLES, console: true };

export const consoleRoutes: RouteRecordRaw[] = [
  { path: "/branch", name: "branch-home", component: withMessages(() => import("../branch/DashboardView.vue")), meta: { ...branch, title: "console.titles.branch" } },
  { path: "/branch/audits", name: "branch-audits", component: withMessages(() => import("../branch/AuditsView.vue")), meta: { ...branch, title: "console.titles.audits" } },
  { path: "/branch/audits/:auditId", name: "branch-audit", props: true, component: withMessages(() => import("../branch/AuditView.vue")), meta: { ...branch, title: "console.titles.audit" } },
  { path: "/branch/findings", name: "branch-findings", component: withMessages(() => import("../branch/FindingsView.vue")), meta: { ...branch, title: "console.titles.findings" } },
  { path: "/branch/rectifications", name: "branch-rectifications", component: withMessages(() => import("../branch/RectificationsView.vue")), meta: { ...branch, title: "console.titles.rectifications" } },
  { path: "/branch/rectifications/:rectId", name: "branch-rectification", props: true, component: withMessages(() => import("../branch/RectificationView.vue")), meta: { ...branch, title: "console.titles.rectification" } },
  { path: "/notifications", name: "notifications", component: withMessages(() => import("./NotificationsView.vue")), meta: { roles: CONSOLE_ROLES, console: true, title: "console.titles.notifications" } },
  { path: "/region", name: "region-home", component: withMessages(() => import("../region/RegionView.vue")), meta: { ...region, title: "console.titles.region" } },
  { path: "/region/escalations", name: "region-escalations", component: withMessages(() => import("../region/EscalationsView.vue")), meta: { ...region, title: "console.titles.escalations" } },
  { path: "/review", name: "review-queue", component: withMessages(() => import("../review/QueueView.vue")), meta: { ...compliance, title: "console.titles.queue" } },
  { path: "/review/audits/:auditId", name: "review-audit", props: true, component: withMessages(() => import("../review/ReviewAuditView.vue")), meta: { ...compliance, title: "console.titles.reviewAudit" } },
  { path: "/review/appeals", name: "review-appeals", component: withMessages(() => import("../review/AppealsView.vue")), meta: { ...compliance, title: "console.titles.appeals" } },
  { path: "/review/fixes", name: "review-fixes", component: withMessages(() => import("../review/FixesView.vue")), meta: { ...compliance, title: "console.titles.fixes" } },
  { path: "/history", name: "history", component: withMessages(() => import("../review/HistoryView.vue")), meta: { ...analyst, title: "console.titles.history" } },
  { path: "/reports", name: "reports", component: withMessages(() => import("../review/ReportsView.vue")), meta: { ...analyst, title: "console.titles.reports" } },
  { path: "/programs", name: "programs", component: withMessages(() => import("../review/ProgramsView.vue")), meta: { ...compliance, title: "console.titles.programs" } },
  { path: "/trail", name: "trail", component: withMessages(() => import("../review/TrailView.vue")), meta: { ...compliance, title: "console.titles.trail" } },
];

declare module "vue-router" {
  interface RouteMeta {
    /** A console screen: the wide layout and the console's navigation. */
    console?: boolean;
  }
}
