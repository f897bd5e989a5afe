// One way to call the API: the bearer token, a single refresh-and-retry on 401 (under the cross-tab
// lock), problem+json turned into ApiError, and a failed connection into NetworkError.
import { API_BASE, currentSession, loadSession, markLoginNeeded, markPasswordChange, refreshedSession } from "../auth/session.ts";
import { ApiError, LoginNeeded, NetworkError, problemOf } from "./problem.ts";

export interface CallOptions {
  method?: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Statuses returned as a Response rather than thrown (e.g. 304). */
  accept?: number[];
  /** Return the response whatever its status (after the 401 refresh): the caller reads it (tus). */
  raw?: boolean;
}

export function apiUrl(path: string): string {
  return path.startsWith("/api/") ? path : `${API_BASE}${path}`;
}

async function send(url: string, options: CallOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json", ...(options.headers ?? {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  let body = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  try {
    return await fetch(url, {
      method: options.method ?? "GET",
      headers,
      ...(body !== undefined ? { body } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      cache: "no-store",
    });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new NetworkError(error instanceof Error ? error.message : String(error));
  }
}

/** An authenticated request; the response when its status is 2xx (or listed in `accept`). */
export async function apiCall(path: string, options: CallOptions = {}): Promise<Response> {
  const session = currentSession.value ?? (await loadSession());
  if (!session || session.needs_login) throw new LoginNeeded();
  const url = apiUrl(path);
  let response = await send(url, options, session.access_token);
  if (response.status === 401) {
    const fresh = await refreshedSession(session.access_token);
    response = await send(url, options, fresh.access_token);
    if (response.status === 401) {
      await markLoginNeeded();
      throw new LoginNeeded();
    }
  }
  if (response.ok || options.raw || options.accept?.includes(response.status)) return response;
  const problem = await problemOf(response);
  // The router watches the session and sends the user to the password change.
  if (response.status === 403 && problem?.type.endsWith("password-change-required")) await markPasswordChange(true);
  throw new ApiError(response.status, problem);
}

export async function apiJson<T>(path: string, options: CallOptions = {}): Promise<T> {
  const response = await apiCall(path, options);
  return (await response.json()) as T;
}

/** A request made before anyone is signed in (the login itself). */
export async function publicJson<T>(path: string, options: CallOptions = {}): Promise<T> {
  const response = await send(apiUrl(path), options, null);
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return (await response.json()) as T;
}
