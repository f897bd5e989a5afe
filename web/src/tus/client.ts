// A small tus 1.0 client (core + creation) that works in a page and in a service worker. Its state, the
// upload URL and the offset the server holds, is handed to `save` after every chunk, so an upload resumes
// at that byte after a dropped connection, a reload or the app being killed.

export const TUS_VERSION = "1.0.0";
export const CHUNK_BYTES = 1024 * 1024;

export interface TusState {
  url: string | null;
  offset: number;
}

/** Any fetch-like function that returns the response whatever its status (auth is its business). */
export type Http = (url: string, init: RequestInit) => Promise<Response>;

export interface TusUpload {
  endpoint: string;
  file: Blob;
  metadata: Record<string, string>;
  state: TusState;
  http: Http;
  save(state: TusState): Promise<void>;
  chunkBytes?: number;
}

/** The server refused the upload (status and its problem text); a network failure is thrown as is. */
export class TusRefused extends Error {
  readonly status: number;
  constructor(status: number, detail: string) {
    super(detail || `tus request answered ${status}`);
    this.name = "TusRefused";
    this.status = status;
  }
}

export function encodeMetadata(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([key, value]) => {
      const bytes = new TextEncoder().encode(value);
      let binary = "";
      for (const byte of bytes) binary += String.fromCharCode(byte);
      return `${key} ${btoa(binary)}`;
    })
    .join(",");
}

async function refusal(response: Response): Promise<TusRefused> {
  let detail = "";
  try {
    const body = (await response.json()) as { detail?: string };
    detail = body.detail ?? "";
  } catch {
    detail = "";
  }
  return new TusRefused(response.status, detail);
}

/** Upload `file` (or finish uploading it); resolves to the server's photo id. */
export async function tusUpload(upload: TusUpload): Promise<string> {
  const { file, http } = upload;
  const chunk = upload.chunkBytes ?? CHUNK_BYTES;
  const base = { "Tus-Resumable": TUS_VERSION };
  let state = { ...upload.state };

  const create = async (): Promise<void> => {
    const response = await http(upload.endpoint, {
      method: "POST",
      headers: { ...base, "Upload-Length": String(file.size), "Upload-Metadata": encodeMetadata(upload.metadata) },
    });
    const location = response.headers.get("Location");
    if (response.status !== 201 || !location) throw await refusal(response);
    state = { url: location, offset: 0 };
    await upload.save(state);
  };

  // Where the server stands: its offset, and the photo when the upload is already complete.
  const head = async (): Promise<string | null> => {
    const response = await http(state.url as string, { method: "HEAD", headers: base });
    if (response.status === 404 || response.status === 410) {
      await create(); // expired or unknown: start again from byte 0
      return null;
    }
    if (!response.ok) throw await refusal(response);
    state = { ...state, offset: Number(response.headers.get("Upload-Offset") ?? "0") };
    await upload.save(state);
    return response.headers.get("Photo-Id");
  };

  // Every byte is in but no photo came back: the upload's own record says whether it was refused.
  const settled = async (): Promise<string> => {
    const response = await http(state.url as string, { method: "GET", headers: { Accept: "application/json" } });
    if (!response.ok) throw await refusal(response);
    const status = (await response.json()) as { status: string; photo_id?: string | null; problem?: { status?: number; detail?: string } | null };
    if (status.photo_id) return status.photo_id;
    if (status.problem) throw new TusRefused(status.problem.status ?? 422, status.problem.detail ?? "");
    throw new TusRefused(500, "all bytes sent but the server made no photo");
  };

  if (!state.url) await create();
  else {
    const photo = await head();
    if (photo) return photo;
  }
  for (;;) {
    if (state.offset >= file.size && file.size > 0) return settled();
    const end = Math.min(file.size, state.offset + chunk);
    const response = await http(state.url as string, {
      method: "PATCH",
      headers: { ...base, "Upload-Offset": String(state.offset), "Content-Type": "application/offset+octet-stream" },
      body: file.slice(state.offset, end),
    });
    if (response.status === 409) {
      const photo = await head(); // another attempt moved it on, or our view is stale
      if (photo) return photo;
      continue;
    }
    if (response.status !== 204) throw await refusal(response);
    state = { ...state, offset: Number(response.headers.get("Upload-Offset") ?? end) };
    await upload.save(state);
    const photo = response.headers.get("Photo-Id");
    if (photo) return photo;
  }
}
