// The signed-in user for every screen: tokens live in IndexedDB (shared by tabs and the service worker),
// and this module keeps a reactive copy for the UI.
import { shallowRef } from "vue";
import { LoginNeeded, NetworkError } from "../api/problem.ts";
import { sharedDb } from "../storage/db.ts";
import type { SessionRecord } from "../storage/records.ts";
import { browserLock, type RefreshCall, refreshUnderLock, type SessionStore, sessionFrom, type TokenResponse } from "./tokens.ts";

export const API_BASE = "/api/v1";
const SESSION_KEY = "current";

/** The session as the UI sees it; null when nobody is signed in on this phone. */
export const currentSession = shallowRef<SessionRecord | null>(null);

export const sessionStore: SessionStore = {
  async read() {
    return (await sharedDb()).get("session", SESSION_KEY);
  },
  async write(session) {
    await (await sharedDb()).put("session", session, SESSION_KEY);
    currentSession.value = session;
  },
};

export async function loadSession(): Promise<SessionRecord | null> {
  currentSession.value = (await sessionStore.read()) ?? null;
  return currentSession.value;
}

const refreshCall: RefreshCall = async (refreshToken) => {
  let response: Response;
  try {
    response = await fetch(`${API_BASE}/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
  } catch {
    throw new NetworkError();
  }
  if (response.status !== 200) return { status: response.status };
  return { status: 200, tokens: (await response.json()) as TokenResponse };
};

/** A session whose access token works, refreshed under the cross-tab lock when `stale` was refused. */
export async function refreshedSession(stale: string): Promise<SessionRecord> {
  const fresh = await refreshUnderLock(stale, { store: sessionStore, lock: browserLock, call: refreshCall, now: Date.now });
  currentSession.value = fresh;
  return fresh;
}

export async function storeLogin(tokens: TokenResponse): Promise<SessionRecord> {
  const session = sessionFrom(tokens, Date.now());
  await sessionStore.write(session);
  return session;
}

/** Forget the tokens and the user on this phone (their work is cleared separately, after a warning). */
export async function forgetSession(): Promise<void> {
  await (await sharedDb()).delete("session", SESSION_KEY);
  currentSession.value = null;
}

export async function markLoginNeeded(): Promise<void> {
  const current = await sessionStore.read();
  if (current && !current.needs_login) await sessionStore.write({ ...current, needs_login: true });
}

/** Whether the user must change their password before anything else (set by the login, a 403, the change). */
export async function markPasswordChange(required: boolean): Promise<void> {
  const current = await sessionStore.read();
  if (current && Boolean(current.password_change_required) !== required) {
    await sessionStore.write({ ...current, password_change_required: required });
  }
}

export { LoginNeeded };
