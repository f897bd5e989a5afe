// A user's time on this phone: the sync engine runs from sign-in to sign-out; sign-out clears their data.
import { currentSession, forgetSession } from "../auth/session.ts";
import { apiCall } from "../api/client.ts";
import { deleteUserData, userDb } from "../storage/db.ts";
import { startEngine, stopEngine } from "./engine.ts";

/** After a login (or at start with a stored session): drain this user's outbox from now on. */
export async function sessionStarted(userId: string): Promise<void> {
  startEngine(userId);
  // Ask the browser not to evict the work on this phone (granted silently to installed apps in Chromium);
  // the answer is shown in settings and the sync centre.
  void navigator.storage?.persist?.().catch(() => false);
}

/** Actions not yet acknowledged by the server for this user. */
export async function unsentCount(userId: string): Promise<number> {
  return (await userDb(userId)).count("outbox");
}

/** Sign out: end the session on the server when reachable, stop syncing, and clear this user's stores. */
export async function signOut(): Promise<void> {
  const session = currentSession.value;
  if (!session) return;
  stopEngine();
  if (!session.needs_login) {
    try {
      await apiCall("/auth/logout", { method: "POST" });
    } catch {
      // Offline or already expired: the tokens are forgotten below either way.
    }
  }
  await deleteUserData(session.user.id);
  await forgetSession();
}
