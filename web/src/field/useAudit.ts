// One audit as the runner, the review and the result screens see it: everything read from IndexedDB,
// every change written there first (then queued), and the phone's rules applied to it.
import { computed, onBeforeUnmount, ref, shallowRef, watch } from "vue";
import { useI18n } from "vue-i18n";
import { currentSession } from "../auth/session.ts";
import type { AnswerChange, ItemAnswer, ItemPhoto } from "../checklist/types.ts";
import { progress, visibleItems } from "../rules/rules.ts";
import type { RuleAnswer, ServedChecklist } from "../rules/types.ts";
import { readSetting, userDb } from "../storage/db.ts";
import { auditActions, answersOf, newId, nowIso, photosOf, removePhoto, saveAnswer, savePhoto } from "../storage/field.ts";
import type { AnswerRecord, AuditRecord, BranchRecord, PhotoRecord } from "../storage/records.ts";
import type { OutboxAction } from "../sync/outbox.ts";
import { syncStatus } from "../sync/status.ts";
import { checklistForAudit } from "./data.ts";
import { preparePhoto } from "./photos.ts";

export function useAudit(auditId: () => string) {
  const { locale } = useI18n();
  const audit = ref<AuditRecord | null>(null);
  const branch = ref<BranchRecord | null>(null);
  const checklist = shallowRef<ServedChecklist | null>(null);
  const answers = ref(new Map<string, AnswerRecord>());
  const photos = ref<PhotoRecord[]>([]);
  const actions = ref<OutboxAction[]>([]);
  const loaded = ref(false);
  const urls = new Map<string, string>();
  const userId = () => currentSession.value?.user.id ?? "";

  async function load(): Promise<void> {
    const user = userId();
    if (!user) return;
    const db = await userDb(user);
    audit.value = (await db.get("audits", auditId())) ?? null;
    if (audit.value) {
      branch.value = (await db.get("branches", audit.value.branch_id)) ?? null;
      if (!checklist.value) checklist.value = (await checklistForAudit(user, audit.value, audit.value.language ?? locale.value))?.body ?? null;
      answers.value = new Map((await answersOf(user, audit.value.id)).map((a) => [a.item_id, a]));
      photos.value = await photosOf(user, audit.value.id);
      actions.value = await auditActions(user, audit.value.id);
    }
    loaded.value = true;
  }

  const stop = watch(() => syncStatus.revision, async () => {
    const user = userId();
    if (!user || !audit.value) return;
    actions.value = await auditActions(user, audit.value.id);
    photos.value = await photosOf(user, audit.value.id);
    audit.value = (await (await userDb(user)).get("audits", audit.value.id)) ?? audit.value;
  });
  onBeforeUnmount(() => {
    stop();
    for (const url of urls.values()) URL.revokeObjectURL(url);
  });

  const ruleAnswers = computed(() => {
    const result: Record<string, RuleAnswer> = {};
    for (const [id, a] of answers.value) result[id] = { value: a.value, na: a.na };
    return result;
  });
  const context = computed(() => ({ branch_type: branch.value?.branch_type ?? null, channel: audit.value?.channel ?? null }));
  const visible = computed(() => (checklist.value ? visibleItems(checklist.value, ruleAnswers.value, context.value) : new Set<string>()));
  const photoCounts = computed(() => {
    const counts: Record<string, number> = {};
    for (const p of photos.value) counts[p.item_id] = (counts[p.item_id] ?? 0) + 1;
    return counts;
  });
  const state = computed(() => (checklist.value ? progress(checklist.value, ruleAnswers.value, photoCounts.value, context.value) : null));

  function itemAnswer(itemId: string): ItemAnswer | null {
    const a = answers.value.get(itemId);
    return a ? { value: a.value, na: a.na, note: a.note, fixed_on_spot: a.fixed_on_spot, timer: a.timer ?? null } : null;
  }

  function itemPhotos(itemId: string): ItemPhoto[] {
    return photos.value
      .filter((p) => p.item_id === itemId)
      .map((p) => {
        let src = urls.get(p.id);
        if (!src) {
          src = URL.createObjectURL(p.blob);
          urls.set(p.id, src);
        }
        const upload = actions.value.find((a) => a.kind === "photo" && a.payload.photo_id === p.id);
        const progressShare = p.server_photo_id ? null : upload?.length ? (upload.offset ?? 0) / upload.length : 0;
        return { id: p.id, src, name: p.name, progress: progressShare };
      });
  }

  /** Store a change to an item's answer, then queue it (a timer start alone is kept but not sent). */
  async function answer(itemId: string, change: AnswerChange): Promise<void> {
    if (!audit.value) return;
    const previous = answers.value.get(itemId);
    // answered_at decides which answer wins on the server: never let a clock step back lose a change.
    const floor = previous ? Date.parse(previous.answered_at) + 1 : 0;
    const next: AnswerRecord = {
      audit_id: audit.value.id,
      item_id: itemId,
      value: previous?.value ?? null,
      na: previous?.na ?? false,
      note: previous?.note ?? null,
      fixed_on_spot: previous?.fixed_on_spot ?? false,
      timer: previous?.timer ?? null,
      ...change,
      answered_at: new Date(Math.max(Date.now(), floor)).toISOString(),
    };
    if (next.na) next.value = null;
    // The server takes a value or N/A; a cleared answer or a running timer stays on the phone until it has one.
    const sendable = next.na || next.value !== null;
    answers.value = new Map(answers.value).set(itemId, next);
    await saveAnswer(userId(), next, sendable);
  }

  async function addPhotos(itemId: string, files: File[]): Promise<void> {
    if (!audit.value) return;
    const size = await readSetting<"original" | "2048">("photoSize", "original");
    for (const file of files) {
      const prepared = await preparePhoto(file, size);
      const record: PhotoRecord = {
        id: newId(), audit_id: audit.value.id, item_id: itemId, blob: prepared.blob, name: file.name || `${itemId}.jpg`,
        type: prepared.blob.type || file.type, size: prepared.blob.size, sha256: prepared.sha256,
        client_captured_at: new Date(file.lastModified || Date.now()).toISOString(), client_location: prepared.location,
        server_photo_id: null, created_at: nowIso(),
      };
      await savePhoto(userId(), record);
      photos.value = [...photos.value, record];
    }
  }

  async function dropPhoto(photoId: string): Promise<void> {
    const photo = photos.value.find((p) => p.id === photoId);
    if (!photo) return;
    await removePhoto(userId(), photo);
    photos.value = photos.value.filter((p) => p.id !== photoId);
  }

  return { audit, branch, checklist, answers, photos, actions, loaded, load, visible, state, itemAnswer, itemPhotos, answer, addPhotos, dropPhoto };
}
