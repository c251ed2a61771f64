// arm64 programs on an amd64 test host, for real: qemu-user through the kernel's binfmt_misc.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";

export const EMULATOR = "/proc/sys/fs/binfmt_misc/qemu-aarch64";

/**
 * Registers qemu-aarch64 with the kernel (binfmt_misc) so that arm64 programs run, sudo too:
 * Debian registers it without the C flag, and without it the kernel ignores setuid bits of
 * emulated programs (sudo: "effective uid is not 0"). Re-registers it with C (credentials from
 * the program, which implies O) and F (the emulator opened now, so it works in containers).
 * This changes the machine's binfmt_misc for every later arm64 program, as wanted here.
 */
export function ensureEmulation(): void {
  if (!fs.existsSync("/proc/sys/fs/binfmt_misc/register"))
    execFileSync("mount", ["-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"]);
  if (!fs.existsSync(EMULATOR)) execFileSync("update-binfmts", ["--enable", "qemu-aarch64"]);
  const entry = fs.readFileSync(EMULATOR, "utf8");
  const field = (name: string) => new RegExp(`^${name} (.*)$`, "m").exec(entry)?.[1] ?? "";
  const flags = field("flags:");
  if (entry.startsWith("enabled") && flags.includes("C") && flags.includes("F")) return;
  const hex = (h: string) => h.replace(/../g, "\\x$&");
  const rule = `:qemu-aarch64:M:${field("offset")}:${hex(field("magic"))}:${hex(field("mask"))}:${field("interpreter")}:${flags.includes("P") ? "P" : ""}CF`;
  fs.writeFileSync(EMULATOR, "-1");
  fs.writeFileSync("/proc/sys/fs/binfmt_misc/register", rule);
}
