// Content hashes: weights files are identified by theirs, embedding cache entries by their image's.
import * as crypto from "node:crypto";
import * as fs from "node:fs";

export function sha256Hex(bytes: Uint8Array): string {
  return crypto.createHash("sha256").update(bytes).digest("hex");
}

export function sha256File(file: string): string {
  return sha256Hex(fs.readFileSync(file));
}
