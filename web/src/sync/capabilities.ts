// Optional request fields the server may or may not know yet. Request bodies refuse unknown fields, so the
// phone sends one only when the server's own OpenAPI description declares it.
import { readSetting, writeSetting } from "../storage/db.ts";

export interface Capabilities {
  startChecklistVersion: boolean;
  locationAccuracy: boolean;
}

const NONE: Capabilities = { startChecklistVersion: false, locationAccuracy: false };
let cached: Capabilities | null = null;

interface Schema {
  properties?: Record<string, Schema>;
  $ref?: string;
  anyOf?: Schema[];
}

function resolve(schemas: Record<string, Schema>, schema: Schema | undefined): Schema | undefined {
  if (!schema) return undefined;
  if (schema.$ref) return resolve(schemas, schemas[schema.$ref.split("/").pop() ?? ""]);
  const branch = schema.anyOf?.find((s) => s.$ref || s.properties);
  return branch ? resolve(schemas, branch) : schema;
}

/** What the server accepts, read from /openapi.json (kept, so an offline start still knows). */
export async function capabilities(): Promise<Capabilities> {
  if (cached) return cached;
  try {
    const response = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`openapi.json answered ${response.status}`);
    const spec = (await response.json()) as { components?: { schemas?: Record<string, Schema> } };
    const schemas = spec.components?.schemas ?? {};
    const start = resolve(schemas, schemas.AuditStart);
    const location = resolve(schemas, start?.properties?.location);
    cached = {
      startChecklistVersion: Boolean(start?.properties?.checklist_version),
      locationAccuracy: Boolean(location?.properties?.accuracy_m),
    };
    await writeSetting("capabilities", cached);
  } catch {
    // Offline (or the server could not say): what was learnt before, and ask again next time. Keeping the
    // fallback for the page's life would send a start queued offline without the fields once online.
    return readSetting<Capabilities>("capabilities", NONE);
  }
  return cached;
}

/** The start body with only the optional fields this server declares. */
export function startBodyFor(body: Record<string, unknown>, caps: Capabilities): Record<string, unknown> {
  const result: Record<string, unknown> = { ...body };
  if (!caps.startChecklistVersion) delete result.checklist_version;
  const location = result.location as Record<string, unknown> | null | undefined;
  if (location && !caps.locationAccuracy) {
    const { accuracy_m: _dropped, ...rest } = location;
    result.location = rest;
  }
  return result;
}
