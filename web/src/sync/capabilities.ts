// Optional request fields the server may or may not know yet. Request bodies refuse unknown fields, so the
// phone sends one only when the server's own OpenAPI description declares it.
import { NetworkError } from "../api/problem.ts";
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
  let response: Response;
  try {
    response = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
  } catch {
    // Unreachable: what was learnt before, and ask again next time. Never learnt, the start waits for the
    // network (NetworkError is retried): sent on a guess, it would lose the optional fields for good.
    const kept = await readSetting<Capabilities | null>("capabilities", null);
    if (kept) return kept;
    throw new NetworkError("the server's capabilities are not known yet");
  }
  try {
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
    return cached;
  } catch {
    // The server answered but cannot say (an older server): what was learnt before, else no optional field.
    return readSetting<Capabilities>("capabilities", NONE);
  }
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
