// IndexedDB is the phone's source of truth: one small shared database for the session and settings,
// and one database per user for their work, so signing out clears exactly that user's data.
import { type DBSchema, type IDBPDatabase, deleteDB, openDB } from "idb";
import type { OutboxAction } from "../sync/outbox.ts";
import type {
  AnswerRecord,
  AssignmentRecord,
  AuditRecord,
  BranchRecord,
  KeptChecklist,
  PhotoRecord,
  SessionRecord,
} from "./records.ts";

export const SHARED_DB = "branch-audit";

interface SharedSchema extends DBSchema {
  session: { key: string; value: SessionRecord };
  settings: { key: string; value: unknown };
}

export interface UserSchema extends DBSchema {
  assignments: { key: string; value: AssignmentRecord };
  branches: { key: string; value: BranchRecord };
  checklists: { key: string; value: KeptChecklist };
  audits: { key: string; value: AuditRecord };
  answers: { key: [string, string]; value: AnswerRecord; indexes: { by_audit: string } };
  photos: { key: string; value: PhotoRecord; indexes: { by_audit: string } };
  outbox: { key: string; value: OutboxAction; indexes: { by_audit_seq: [string, number] } };
  counters: { key: string; value: number };
}

let shared: Promise<IDBPDatabase<SharedSchema>> | null = null;
const perUser = new Map<string, Promise<IDBPDatabase<UserSchema>>>();

export function sharedDb(): Promise<IDBPDatabase<SharedSchema>> {
  shared ??= openDB<SharedSchema>(SHARED_DB, 1, {
    upgrade(db) {
      db.createObjectStore("session");
      db.createObjectStore("settings");
    },
  });
  return shared;
}

export function userDbName(userId: string): string {
  return `${SHARED_DB}:user:${userId}`;
}

export function userDb(userId: string): Promise<IDBPDatabase<UserSchema>> {
  let db = perUser.get(userId);
  if (!db) {
    db = openDB<UserSchema>(userDbName(userId), 1, {
      upgrade(database) {
        database.createObjectStore("assignments", { keyPath: "id" });
        database.createObjectStore("branches", { keyPath: "id" });
        database.createObjectStore("checklists", { keyPath: "id" });
        database.createObjectStore("audits", { keyPath: "id" });
        const answers = database.createObjectStore("answers", { keyPath: ["audit_id", "item_id"] });
        answers.createIndex("by_audit", "audit_id");
        const photos = database.createObjectStore("photos", { keyPath: "id" });
        photos.createIndex("by_audit", "audit_id");
        const outbox = database.createObjectStore("outbox", { keyPath: "id" });
        outbox.createIndex("by_audit_seq", ["audit_id", "seq"]);
        database.createObjectStore("counters");
      },
      blocking() {
        // Another tab deletes this user's data (sign-out): let it.
        void db?.then((d) => d.close());
        perUser.delete(userId);
      },
    });
    perUser.set(userId, db);
  }
  return db;
}

/** Remove everything this user kept on the phone (sign-out). */
export async function deleteUserData(userId: string): Promise<void> {
  const open = perUser.get(userId);
  perUser.delete(userId);
  if (open) (await open).close();
  await deleteDB(userDbName(userId));
}

export async function readSetting<T>(key: string, fallback: T): Promise<T> {
  const value = await (await sharedDb()).get("settings", key);
  return value === undefined ? fallback : (value as T);
}

export async function writeSetting(key: string, value: unknown): Promise<void> {
  await (await sharedDb()).put("settings", value, key);
}

/** Storage used and whether the browser promised not to evict it. */
export async function storageStatus(): Promise<{ persisted: boolean | null; usage: number | null; quota: number | null }> {
  if (!navigator.storage) return { persisted: null, usage: null, quota: null };
  const [persisted, estimate] = await Promise.all([
    navigator.storage.persisted ? navigator.storage.persisted() : Promise.resolve(null),
    navigator.storage.estimate ? navigator.storage.estimate() : Promise.resolve(null),
  ]);
  return { persisted, usage: estimate?.usage ?? null, quota: estimate?.quota ?? null };
}
