// The tus client against a small in-memory tus server that can drop a PATCH part-way.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type TusState, encodeMetadata, tusUpload } from "./client.ts";

function tusServer(options: { dropAfterBytes?: number } = {}) {
  const uploads = new Map<string, { length: number; bytes: Uint8Array[]; offset: number; photo: string | null }>();
  const log: string[] = [];
  let dropAt = options.dropAfterBytes ?? null;
  const http = async (url: string, init: RequestInit): Promise<Response> => {
    const headers = new Headers(init.headers);
    log.push(`${init.method} ${headers.get("Upload-Offset") ?? ""}`.trim());
    assert.equal(headers.get("Tus-Resumable"), "1.0.0");
    if (init.method === "POST") {
      const id = `u${uploads.size + 1}`;
      uploads.set(id, { length: Number(headers.get("Upload-Length")), bytes: [], offset: 0, photo: null });
      return new Response(null, { status: 201, headers: { Location: `/uploads/${id}` } });
    }
    const upload = uploads.get(url.split("/").pop() ?? "");
    if (!upload) return new Response(null, { status: 404 });
    if (init.method === "HEAD") {
      const h: Record<string, string> = { "Upload-Offset": String(upload.offset) };
      if (upload.photo) h["Photo-Id"] = upload.photo;
      return new Response(null, { status: 200, headers: h });
    }
    const offset = Number(headers.get("Upload-Offset"));
    if (offset !== upload.offset) return new Response(null, { status: 409 });
    const body = new Uint8Array(await (init.body as Blob).arrayBuffer());
    if (dropAt !== null) {
      // The connection dies after part of this body: the server keeps nothing of the unfinished piece.
      dropAt = null;
      throw new TypeError("network connection lost");
    }
    upload.bytes.push(body);
    upload.offset += body.length;
    const h: Record<string, string> = { "Upload-Offset": String(upload.offset) };
    if (upload.offset === upload.length) {
      upload.photo = "photo-1";
      h["Photo-Id"] = upload.photo;
    }
    return new Response(null, { status: 204, headers: h });
  };
  return { http, uploads, log };
}

const file = (size: number) => new Blob([new Uint8Array(size).map((_, i) => i % 251)]);

test("uploads in 1 MiB chunks and returns the photo id", async () => {
  const server = tusServer();
  const saved: TusState[] = [];
  const photo = await tusUpload({ endpoint: "/uploads", file: file(2.5 * 1024 * 1024), metadata: { item_id: "hall" }, state: { url: null, offset: 0 }, http: server.http, save: async (s) => void saved.push(s) });
  assert.equal(photo, "photo-1");
  assert.deepEqual(server.log, ["POST", "PATCH 0", "PATCH 1048576", "PATCH 2097152"]);
  assert.deepEqual(saved.at(-1), { url: "/uploads/u1", offset: 2.5 * 1024 * 1024 });
});

test("after a dropped PATCH it resumes at the stored offset, with one upload", async () => {
  const server = tusServer({ dropAfterBytes: 1 });
  const blob = file(3 * 1024 * 1024);
  let state: TusState = { url: null, offset: 0 };
  const save = async (s: TusState) => void (state = s);
  // First attempt: creation and the first chunk go through, then the connection drops.
  let failures = 0;
  const first = tusUpload({ endpoint: "/uploads", file: blob, metadata: {}, state, http: server.http, save, chunkBytes: 1024 * 1024 });
  await first.catch(() => (failures += 1));
  assert.equal(failures, 1);
  assert.equal(state.url, "/uploads/u1");
  // The app is restarted: only the saved state survives.
  const photo = await tusUpload({ endpoint: "/uploads", file: blob, metadata: {}, state, http: server.http, save });
  assert.equal(photo, "photo-1");
  assert.equal(server.uploads.size, 1);
  assert.deepEqual(server.log, ["POST", "PATCH 0", "HEAD", "PATCH 0", "PATCH 1048576", "PATCH 2097152"]);
  const joined = new Uint8Array(await new Blob(server.uploads.get("u1")?.bytes as BlobPart[]).arrayBuffer());
  assert.deepEqual(joined, new Uint8Array(await blob.arrayBuffer()));
});

test("a finished upload is not sent again", async () => {
  const server = tusServer();
  let state: TusState = { url: null, offset: 0 };
  await tusUpload({ endpoint: "/uploads", file: file(10), metadata: {}, state, http: server.http, save: async (s) => void (state = s) });
  const again = await tusUpload({ endpoint: "/uploads", file: file(10), metadata: {}, state, http: server.http, save: async () => undefined });
  assert.equal(again, "photo-1");
  assert.deepEqual(server.log.slice(2), ["HEAD"]);
});

test("metadata values are base64 UTF-8", () => {
  assert.equal(encodeMetadata({ filename: "大堂.jpg", item_id: "a" }), `filename ${Buffer.from("大堂.jpg").toString("base64")},item_id YQ==`);
});
