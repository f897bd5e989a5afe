// Times on screen are always in the branch's time zone (Intl.DateTimeFormat), never UTC; plain functions
// so they are tested with node --test.

export function formatDateTime(iso: string | null | undefined, timeZone: string, locale: string): string {
  if (!iso) return "";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  return new Intl.DateTimeFormat(locale, { timeZone, dateStyle: "medium", timeStyle: "short" }).format(at);
}

export function formatDate(iso: string | null | undefined, timeZone: string, locale: string): string {
  if (!iso) return "";
  // A bare date (a covert visit's day, a program's start) is a calendar day: never shift it across zones.
  if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) {
    return new Intl.DateTimeFormat(locale, { timeZone: "UTC", dateStyle: "medium" }).format(new Date(`${iso}T00:00:00Z`));
  }
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  return new Intl.DateTimeFormat(locale, { timeZone, dateStyle: "medium" }).format(at);
}

/** The calendar day (YYYY-MM-DD) of an instant in a time zone. */
export function localDay(iso: string, timeZone: string): string {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(
    new Date(iso),
  );
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${part("year")}-${part("month")}-${part("day")}`;
}

export interface TimeLeft {
  closed: boolean;
  days: number;
  hours: number;
  /** Under two days left: the list says so in words and with a mark. */
  closing: boolean;
}

export function timeLeft(untilIso: string | null | undefined, nowMs: number): TimeLeft | null {
  if (!untilIso) return null;
  const left = new Date(untilIso).getTime() - nowMs;
  if (left <= 0) return { closed: true, days: 0, hours: 0, closing: false };
  const hours = Math.floor(left / 3_600_000);
  return { closed: false, days: Math.floor(hours / 24), hours: hours % 24, closing: left < 2 * 86_400_000 };
}

/** The wall clock of an instant in a time zone: two-digit parts ("year" four), 24-hour. */
function wallClock(instant: number, timeZone: string): (part: "year" | "month" | "day" | "hour" | "minute") => string {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  }).formatToParts(new Date(instant));
  return (part) => parts.find((p) => p.type === part)?.value ?? "00";
}

/**
 * A local wall time typed into <input type="datetime-local"> in the branch's zone, as an RFC 3339 instant.
 * Found by guessing the offset and correcting it once (exact except inside a DST jump).
 */
export function zonedInstant(local: string, timeZone: string): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local);
  if (!match) throw new RangeError(`not a local date-time: ${local}`);
  const [, y, mo, d, h, mi] = match.map(Number) as [number, number, number, number, number, number];
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  const offsetAt = (instant: number): number => {
    const get = wallClock(instant, timeZone);
    return Date.UTC(Number(get("year")), Number(get("month")) - 1, Number(get("day")), Number(get("hour")), Number(get("minute"))) - instant;
  };
  let instant = wall - offsetAt(wall);
  instant = wall - offsetAt(instant);
  return new Date(instant).toISOString();
}

/** An instant as the value of <input type="datetime-local"> in a time zone. */
export function localInputValue(iso: string, timeZone: string): string {
  const get = wallClock(new Date(iso).getTime(), timeZone);
  return `${get("year")}-${get("month")}-${get("day")}T${get("hour")}:${get("minute")}`;
}

export function formatScore(score: number | null | undefined, locale: string): string {
  if (score === null || score === undefined) return "–";
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 1 }).format(score);
}

export function formatPercent(ratio: number | null | undefined, locale: string): string {
  if (ratio === null || ratio === undefined) return "–";
  return new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 0 }).format(ratio);
}

/** A time zone as people say it ("China Time", "中国时间"), not its IANA id; the id when the browser has no name. */
export function zoneName(timezone: string, locale: string): string {
  if (timezone === "UTC") return "UTC";
  try {
    const parts = new Intl.DateTimeFormat(locale, { timeZone: timezone, timeZoneName: "shortGeneric" }).formatToParts(new Date());
    return parts.find((part) => part.type === "timeZoneName")?.value ?? timezone;
  } catch {
    return timezone;
  }
}
