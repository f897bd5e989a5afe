// Branches and regions in the caller's scope, read once per session: their names, and each branch's time
// zone (every time on screen is shown in it).
import { currentSession } from "../auth/session.ts";
import { listAll } from "./api.ts";
import type { Branch, Region } from "./types.ts";

export interface Organisation {
  branches: Map<string, Branch>;
  regions: Map<string, Region>;
}

let cached: { userId: string; value: Promise<Organisation> } | null = null;

export function organisation(): Promise<Organisation> {
  const userId = currentSession.value?.user.id ?? "";
  if (!cached || cached.userId !== userId) {
    const value = Promise.all([listAll<Branch>("/branches"), listAll<Region>("/regions")]).then(([branches, regions]) => ({
      branches: new Map(branches.map((b) => [b.id, b])),
      regions: new Map(regions.map((r) => [r.id, r])),
    }));
    value.catch(() => {
      cached = null;
    });
    cached = { userId, value };
  }
  return cached.value;
}

export const FALLBACK_ZONE = "Asia/Shanghai";

export function zoneOf(org: Organisation | null, branchId: string | null | undefined): string {
  return (branchId && org?.branches.get(branchId)?.timezone) || FALLBACK_ZONE;
}

export function branchLabel(org: Organisation | null, branchId: string | null | undefined): string {
  const branch = branchId ? org?.branches.get(branchId) : undefined;
  return branch ? `${branch.code} · ${branch.name}` : (branchId ?? "");
}
