// SSH host keys as rosfleet pins them. A machine's keys are read with OpenSSH's ssh-keyscan: a key
// exchange and nothing more (no login, no secret). Of the keys a machine offers, the one pinned is
// the one the SSH client of @pulumi/command (Go's x/crypto/ssh) is shown by default — ECDSA, then
// RSA, then Ed25519 — so the pin holds whether or not that client narrows its algorithms to the
// pinned key's type. Fingerprints are printed as `ssh-keygen -l` prints them.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";

/** A public host key: its type and its base64 blob (an authorized_keys line without comment). */
export interface HostKey {
  readonly type: string;
  readonly blob: string;
}

/** Key types in the order Go's x/crypto/ssh client prefers them when told nothing else. */
const CLIENT_PREFERENCE = [
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "ssh-rsa",
  "ssh-ed25519",
];

/** How ssh-keygen names a key type in a fingerprint line. */
const TYPE_NAMES: Readonly<Record<string, string>> = {
  "ecdsa-sha2-nistp256": "ECDSA",
  "ecdsa-sha2-nistp384": "ECDSA",
  "ecdsa-sha2-nistp521": "ECDSA",
  "ssh-rsa": "RSA",
  "ssh-ed25519": "ED25519",
};

const BLOB = /^[A-Za-z0-9+/]+={0,2}$/;

/** `type base64 [comment]` (an authorized_keys or .pub line) → the key; undefined if not one. */
export function parseHostKey(text: string): HostKey | undefined {
  const [type, blob] = text.trim().split(/\s+/);
  if (type === undefined || blob === undefined || !(type in TYPE_NAMES) || !BLOB.test(blob))
    return undefined;
  // The blob names its own type first: a key pasted under another type's name is not that key.
  const raw = Buffer.from(blob, "base64");
  const length = raw.length >= 4 ? raw.readUInt32BE(0) : -1;
  if (length < 0 || raw.subarray(4, 4 + length).toString("latin1") !== type) return undefined;
  return { type, blob };
}

export const keyLine = (key: HostKey): string => `${key.type} ${key.blob}`;

export const sameKey = (a: HostKey, b: HostKey): boolean => a.type === b.type && a.blob === b.blob;

/** `SHA256:…` of the key, as `ssh-keygen -l` prints it. */
export const fingerprint = (key: HostKey): string =>
  `SHA256:${createHash("sha256")
    .update(Buffer.from(key.blob, "base64"))
    .digest("base64")
    .replace(/=+$/, "")}`;

/** `ECDSA SHA256:…`: a key as a person compares it with `ssh-keygen -lf`. */
export const describeKey = (key: HostKey): string =>
  `${TYPE_NAMES[key.type] ?? key.type} ${fingerprint(key)}`;

/** Of the keys a machine offers, the one the provider's SSH client is shown. */
export function preferredKey(keys: readonly HostKey[]): HostKey | undefined {
  for (const type of CLIENT_PREFERENCE) {
    const key = keys.find((k) => k.type === type);
    if (key !== undefined) return key;
  }
  return undefined;
}

/** ssh-keyscan's output (`host type blob` lines, `#` comments) → the keys in it. */
export function parseKeyscan(stdout: string): HostKey[] {
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .flatMap((line) => {
      const key = parseHostKey(line.trim().split(/\s+/).slice(1).join(" "));
      return key === undefined ? [] : [key];
    });
}

export type KeyScan =
  | { readonly ok: true; readonly keys: readonly HostKey[] }
  | { readonly ok: false; readonly reason: string };

/** Reads the host keys `host:port` offers. */
export type HostKeyScanner = (host: string, port: number) => Promise<KeyScan>;

const SCAN_SECONDS = 5;

/** ssh-keyscan, bounded: a machine that is off answers within SCAN_SECONDS. */
export const keyscan: HostKeyScanner = (host, port) =>
  new Promise((resolve) => {
    execFile(
      "ssh-keyscan",
      ["-T", String(SCAN_SECONDS), "-p", String(port), "-t", "ecdsa,rsa,ed25519", "--", host],
      { timeout: (SCAN_SECONDS + 10) * 1000, encoding: "utf8" },
      (err, stdout, stderr) => {
        const keys = parseKeyscan(stdout);
        if (keys.length > 0) return resolve({ ok: true, keys });
        const code = (err as NodeJS.ErrnoException | null)?.code;
        const said = stderr
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l !== "" && !l.startsWith("#"))
          .join("; ");
        resolve({
          ok: false,
          reason:
            code === "ENOENT"
              ? "ssh-keyscan is not installed here (it comes with OpenSSH's client: apt-get install openssh-client)"
              : said !== ""
                ? said
                : `no SSH server answered within ${SCAN_SECONDS} s`,
        });
      },
    );
  });

/** Tests put a scanner here (they reach no lab machine); the program uses ssh-keyscan. */
const SCANNER = Symbol.for("rosfleet.hostKeyScanner");
type ScannerSlot = { [SCANNER]?: HostKeyScanner };

export const hostKeyScanner = (): HostKeyScanner => (globalThis as ScannerSlot)[SCANNER] ?? keyscan;

export function setHostKeyScanner(scanner: HostKeyScanner | undefined): void {
  (globalThis as ScannerSlot)[SCANNER] = scanner;
}
