import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { crc32, zip } from "./zip.ts";

test("crc32 of a known string", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

test("the archive opens with a standard unzip, names and bytes intact", async () => {
  const folder = mkdtempSync(join(tmpdir(), "zip-"));
  const photo = new Uint8Array(5000).map((_, i) => (i * 7) % 256);
  const archive = zip([{ name: "audit.json", bytes: new TextEncoder().encode('{"a":1}') }, { name: "photos/大堂.jpg", bytes: photo }]);
  writeFileSync(join(folder, "b.zip"), new Uint8Array(await archive.arrayBuffer()));
  const python = process.env.PYTHON ?? "python3";
  execFileSync(python, ["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])", join(folder, "b.zip"), folder]);
  assert.equal(readFileSync(join(folder, "audit.json"), "utf8"), '{"a":1}');
  assert.deepEqual(new Uint8Array(readFileSync(join(folder, "photos/大堂.jpg"))), photo);
});
