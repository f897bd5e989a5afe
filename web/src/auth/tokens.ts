// Rotating refresh tokens shared by every tab: a refresh runs under a Web Lock, and a tab that waited
// for the lock first looks whether another tab already rotated the token, so one refresh token is
// never presented twice (the server revokes the whole session when it sees a used token again).
import { LoginNeeded, NetworkError } from "../api/problem.ts";
import type { SessionRecord, UserRecord } from "../storage/records.ts";

export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  user: UserRecord;
  password_change_required?: boolean;
}

export interface SessionStore {
  read(): Promise<SessionRecord | undefined>;
  write(session: SessionRecord): Promise<void>;
}

export type LockRunner = <T>(name: string, work: () => Promise<T>) => Promise<T>;

/** POST /auth/refresh: the status and, on 200, the new tokens; throws NetworkError when unreachable. */
export type RefreshCall = (refreshToken: string) => Promise<{ status: number; tokens?: TokenResponse }>;

export const REFRESH_LOCK = "branch-audit:token-refresh";
// Refresh a little early so a request does not leave with a token that expires on the way.
const EXPIRY_MARGIN_MS = 30_000;

export function sessionFrom(tokens: TokenResponse, now: number): SessionRecord {
  return {
    user: tokens.user,
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    access_expires_at: now + tokens.expires_in * 1000 - EXPIRY_MARGIN_MS,
    needs_login: false,
    ...(tokens.password_change_required ? { password_change_required: true } : {}),
  };
}

/** Run `work` under the browser's Web Lock when there is one (every current browser), else directly. */
export const browserLock: LockRunner = (name, work) => {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  return locks ? (locks.request(name, work) as ReturnType<typeof work>) : work();
};

/**
 * A fresh session to replace the one whose access token `staleAccessToken` was refused.
 * Another tab may have rotated the tokens while this one waited for the lock: then its result is used.
 */
export async function refreshUnderLock(
  staleAccessToken: string,
  deps: { store: SessionStore; lock: LockRunner; call: RefreshCall; now: () => number },
): Promise<SessionRecord> {
  return deps.lock(REFRESH_LOCK, async () => {
    const current = await deps.store.read();
    if (!current || current.needs_login) throw new LoginNeeded();
    if (current.access_token !== staleAccessToken && current.access_expires_at > deps.now()) {
      return current;
    }
    const answer = await deps.call(current.refresh_token);
    if (answer.status === 200 && answer.tokens) {
      const fresh = sessionFrom(answer.tokens, deps.now());
      await deps.store.write(fresh);
      return fresh;
    }
    if (answer.status === 401 || answer.status === 400) {
      // Keep the user (and so their queue): only the tokens are gone.
      await deps.store.write({ ...current, needs_login: true });
      throw new LoginNeeded();
    }
    throw new NetworkError(`refresh answered ${answer.status}`);
  });
}
