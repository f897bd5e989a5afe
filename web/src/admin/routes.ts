// The admin screens, added to the app's one route table. Each loads the console's and the admin's
// messages with it (the admin shares the console's shell and navigation).
import type { RouteRecordRaw } from "vue-router";
import { loadArea } from "../i18n.ts";

type Loader = () => Promise<unknown>;
const withMessages = (load: Loader) => () =>
  Promise.all([loadArea("console"), loadArea("admin"), load()]).then(([, , screen]) => screen as never);

const admin = { roles: ["admin"] as const, console: true };

export const adminRoutes: RouteRecordRaw[] = [
  { path: "/admin/users", name: "admin-users", component: withMessages(() => import("./UsersView.vue")), meta: { ...admin, title: "admin.titles.users" } },
  { path: "/admin/users/:userId", name: "admin-user", props: true, component: withMessages(() => import("./UserView.vue")), meta: { ...admin, title: "admin.titles.user" } },
  { path: "/admin/organisation", name: "admin-org", component: withMessages(() => import("./OrgView.vue")), meta: { ...admin, title: "admin.titles.org" } },
  { path: "/admin/branches/:branchId", name: "admin-branch", props: true, component: withMessages(() => import("./BranchView.vue")), meta: { ...admin, title: "admin.titles.branch" } },
  { path: "/admin/checklists", name: "admin-checklists", component: withMessages(() => import("./ChecklistsView.vue")), meta: { ...admin, title: "admin.titles.checklists" } },
  { path: "/admin/webhooks", name: "admin-webhooks", component: withMessages(() => import("./WebhooksView.vue")), meta: { ...admin, title: "admin.titles.webhooks" } },
  { path: "/admin/failures", name: "admin-failures", component: withMessages(() => import("./FailuresView.vue")), meta: { ...admin, title: "admin.titles.failures" } },
  { path: "/admin/programs", name: "admin-programs", component: withMessages(() => import("./ProgramsAdminView.vue")), meta: { ...admin, title: "admin.titles.programs" } },
];

