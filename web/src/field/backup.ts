// "Export a backup": everything this user keeps on the phone (audits, answers, the outbox and the photos)
// as one ZIP file the user can save, for when a phone must be wiped with work still unsent.
import { userDb } from "../storage/db.ts";
import { type ZipEntry, zip } from "../storage/zip.ts";

export async function backupArchive(userId: string): Promise<Blob> {
  const db = await userDb(userId);
  const [audits, answers, outbox, photos, assignments] = await Promise.all([
    db.getAll("audits"), db.getAll("answers"), db.getAll("outbox"), db.getAll("photos"), db.getAll("assignments"),
  ]);
  const encoder = new TextEncoder();
  const json = (value: unknown) => encoder.encode(JSON.stringify(value, null, 2));
  const entries: ZipEntry[] = [
    { name: "audits.json", bytes: json(audits) },
    { name: "answers.json", bytes: json(answers) },
    { name: "outbox.json", bytes: json(outbox) },
    { name: "assignments.json", bytes: json(assignments) },
    { name: "photos.json", bytes: json(photos.map(({ blob: _blob, ...meta }) => meta)) },
  ];
  for (const photo of photos) {
    const extension = photo.type === "image/png" ? "png" : photo.type === "image/webp" ? "webp" : "jpg";
    entries.push({ name: `photos/${photo.audit_id}/${photo.item_id}/${photo.id}.${extension}`, bytes: new Uint8Array(await photo.blob.arrayBuffer()) });
  }
  return zip(entries);
}

export function download(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
