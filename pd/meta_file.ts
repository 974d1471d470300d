/**
 * PD metadata files: a small header (magic, format version, body length,
 * CRC-32 of the body) followed by a UTF-8 JSON body, replaced crash-safely by
 * writing a temporary file, fsyncing it, renaming it over the old one and
 * fsyncing the directory.
 *
 * Layout (little-endian):
 *
 * | offset | size | field                              |
 * |-------:|-----:|------------------------------------|
 * | 0      | 8    | magic `SPIREPD\n`                  |
 * | 8      | 4    | format version (1)                 |
 * | 12     | 4    | body length in bytes               |
 * | 16     | 4    | CRC-32 (IEEE) of the body          |
 * | 20     | n    | body: JSON object with a `kind`    |
 *
 * @module
 */

import { crc32 } from "./_crc32.ts";
import { PdCorruptError } from "./errors.ts";
import { dirname, type PdFileSystem } from "./fs.ts";

/** Format version written by this code. */
export const META_FORMAT_VERSION = 1;
/** Largest body accepted, in bytes. */
export const META_BODY_BYTES_MAX = 256 * 1024 * 1024;

const MAGIC = new TextEncoder().encode("SPIREPD\n");
const HEADER_BYTES = 20;

/** Suffix of the temporary file a save writes before renaming it. */
export const TEMP_SUFFIX = ".tmp";

/**
 * Encodes a metadata file.
 *
 * @param kind What the file holds (checked on decode).
 * @param body JSON-serialisable contents.
 * @returns The file's bytes.
 * @throws {RangeError} When the body exceeds META_BODY_BYTES_MAX.
 */
export function encodeMeta(kind: string, body: Record<string, unknown>): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify({ kind, ...body }));
  if (json.length > META_BODY_BYTES_MAX) {
    throw new RangeError(
      `Cannot encode PD ${kind}: ${json.length} bytes exceed ${META_BODY_BYTES_MAX}`,
    );
  }
  const out = new Uint8Array(HEADER_BYTES + json.length);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, META_FORMAT_VERSION, true);
  view.setUint32(12, json.length, true);
  view.setUint32(16, crc32(json), true);
  out.set(json, HEADER_BYTES);
  return out;
}

/**
 * Decodes and checks a metadata file.
 *
 * @param path For error messages.
 * @param kind The kind expected.
 * @param bytes The file's contents.
 * @returns The JSON body.
 * @throws {PdCorruptError} On a bad magic, an unknown version, a short or long
 *   file, a checksum mismatch, unparsable JSON or another kind.
 */
export function decodeMeta(path: string, kind: string, bytes: Uint8Array): Record<string, unknown> {
  if (bytes.length < HEADER_BYTES) {
    throw new PdCorruptError(path, `${bytes.length} bytes is shorter than the header`);
  }
  if (!MAGIC.every((b, i) => bytes[i] === b)) throw new PdCorruptError(path, "bad magic");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== META_FORMAT_VERSION) {
    throw new PdCorruptError(path, `format version ${version}, this build reads 1`);
  }
  const length = view.getUint32(12, true);
  if (bytes.length !== HEADER_BYTES + length) {
    throw new PdCorruptError(
      path,
      `body is ${bytes.length - HEADER_BYTES} bytes, header says ${length} (torn write?)`,
    );
  }
  const body = bytes.subarray(HEADER_BYTES);
  if (crc32(body) !== view.getUint32(16, true)) {
    throw new PdCorruptError(path, "checksum mismatch");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (e) {
    throw new PdCorruptError(path, `body is not JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new PdCorruptError(path, "body is not a JSON object");
  }
  const obj = parsed as Record<string, unknown>;
  if (obj.kind !== kind) {
    throw new PdCorruptError(path, `holds "${String(obj.kind)}", expected "${kind}"`);
  }
  return obj;
}

/**
 * Replaces a file crash-safely: after a crash at any point, the file holds
 * either its old or its new contents, and once this resolves the new
 * contents survive a crash.
 *
 * @param fs The filesystem.
 * @param path The file.
 * @param data Its new contents.
 */
export async function writeFileAtomic(
  fs: PdFileSystem,
  path: string,
  data: Uint8Array,
): Promise<void> {
  const temp = path + TEMP_SUFFIX;
  await fs.writeFile(temp, data);
  await fs.syncFile(temp);
  await fs.rename(temp, path);
  await fs.syncDir(dirname(path));
}
