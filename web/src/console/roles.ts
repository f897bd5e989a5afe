// Who the console serves, and the screens each role gets in its navigation.
export const BRANCH_ROLES = ["branch_head"] as const;
export const REGION_ROLES = ["regional_manager"] as const;
export const COMPLIANCE_ROLES = ["compliance", "admin"] as const;
export const CONSOLE_ROLES = [...BRANCH_ROLES, ...REGION_ROLES, ...COMPLIANCE_ROLES] as const;
/** Roles that read history, reports and exports. */
export const ANALYST_ROLES = [...REGION_ROLES, ...COMPLIANCE_ROLES] as const;

export const NAV_BY_ROLE: Record<string, { route: string; label: string }[]> = {
  branch_head: [
    { route: "branch-home", label: "console.nav.branch" },
    { route: "branch-audits", label: "console.nav.audits" },
    { route: "branch-findings", label: "console.nav.findings" },
    { route: "branch-rectifications", label: "console.nav.rectifications" },
    { route: "notifications", label: "console.nav.notifications" },
  ],
  regional_manager: [
    { route: "region-home", label: "console.nav.region" },
    { route: "region-escalations", label: "console.nav.escalations" },
    { route: "history", label: "console.nav.history" },
    { route: "reports", label: "console.nav.reports" },
    { route: "notifications", label: "console.nav.notifications" },
  ],
  compliance: [
    { route: "review-queue", label: "console.nav.queue" },
    { route: "review-appeals", label: "console.nav.appeals" },
    { route: "review-fixes", label: "console.nav.fixes" },
    { route: "history", label: "console.nav.history" },
    { route: "reports", label: "console.nav.reports" },
    { route: "programs", label: "console.nav.programs" },
    { route: "trail", label: "console.nav.trail" },
    { route: "notifications", label: "console.nav.notifications" },
  ],
};
// Admins get compliance's screens and their own (users, organisation, checklists, integrations).
NAV_BY_ROLE.admin = [
  ...(NAV_BY_ROLE.compliance ?? []),
  { route: "admin-users", label: "admin.nav.users" },
  { route: "admin-org", label: "admin.nav.org" },
  { route: "admin-checklists", label: "admin.nav.checklists" },
  { route: "admin-webhooks", label: "admin.nav.webhooks" },
  { route: "admin-failures", label: "admin.nav.failures" },
  { route: "admin-programs", label: "admin.nav.programs" },
];

export const HOME_OF_ROLE: Record<string, string> = {
  branch_head: "branch-home",
  regional_manager: "region-home",
  compliance: "review-queue",
  admin: "admin-users",
};
