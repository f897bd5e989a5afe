// The console's calls: query strings without empty filters, cursor pages, photos fetched with the bearer
// (an <img> cannot send it) and browser downloads through single-use download tickets.
import { API_BASE } from "../auth/session.ts";
import { apiCall, apiJson } from "../api/client.ts";
import type { Page } from "./types.ts";

export type Query = Record<string, string | number | boolean | null | undefined>;

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === "") continue;
    params.set(key, String(value));
  }
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

export function getJson<T>(path: string, query: Query = {}): Promise<T> {
  return apiJson<T>(withQuery(path, query));
}

export function postJson<T>(path: string, json: unknown, headers: Record<string, string> = {}): Promise<T> {
  return apiJson<T>(path, { method: "POST", json, headers });
}

/** Every page of a list, up to `max` rows (lists in the console are small: one branch, one region). */
export async function listAll<T>(path: string, query: Query = {}, max = 1000): Promise<T[]> {
  const rows: T[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<T> = await getJson<Page<T>>(path, { ...query, limit: 200, cursor });
    rows.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && rows.length < max);
  return rows;
}

/** A photo's bytes (or thumbnail) as an object URL; the caller revokes it. */
export async function photoObjectUrl(photoId: string, size: "thumbnail" | "full" = "thumbnail"): Promise<string> {
  const path = size === "full" ? `/photos/${photoId}` : withQuery(`/photos/${photoId}/thumbnail`, { size: 320 });
  const response = await apiCall(path, { headers: { Accept: "image/*" } });
  return URL.createObjectURL(await response.blob());
}

async function uploadPhoto(path: string, file: File): Promise<string> {
  const form = new FormData();
  form.set("file", file, file.name || "photo.jpg");
  form.set("client_captured_at", new Date(file.lastModified || Date.now()).toISOString());
  const response = await apiCall(path, { method: "POST", body: form });
  const photo = (await response.json()) as { id: string };
  return photo.id;
}

/** Add an "after" photo to a rectification; answers the new photo's id. */
export async function uploadRectificationPhoto(rectificationId: string, file: File): Promise<string> {
  return uploadPhoto(`/rectifications/${rectificationId}/photos`, file);
}

/** Add a photo for an appeal of a finding, to name in the appeal; answers the new photo's id. */
export async function uploadAppealPhoto(findingId: string, file: File): Promise<string> {
  return uploadPhoto(`/findings/${findingId}/appeal-photos`, file);
}

interface DownloadTicket {
  url: string;
  expires_at: string;
}

/** Let the browser download an API file: a single-use ticket URL, never the access token, goes in the link. */
export async function downloadThroughTicket(path: string, fileName: string): Promise<void> {
  const apiPath = path.startsWith("/api/") ? path : `${API_BASE}${path}`;
  const ticket = await postJson<DownloadTicket>("/download-tickets", { path: apiPath });
  const link = document.createElement("a");
  link.href = ticket.url;
  link.download = fileName;
  link.rel = "noopener";
  document.body.append(link);
  link.click();
  link.remove();
}
