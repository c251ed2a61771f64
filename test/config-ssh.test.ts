// How rosfleet logs in to the machines (components/config/ssh-checks.ts): a key in the stack, a
// key file, or the SSH agent; each mistake is one config error at preview naming what to set.
// The keys are real ones, made by this machine's ssh-keygen.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ParseEnv, Problem, parseLab, sshAgentState } from "../components/config";
import { privateKeyProblem } from "../components/config/ssh-checks";
import { configValues } from "./helpers/stack";

const lab = {
  ssh: { user: "ubuntu" },
  machines: [
    { name: "laptop", host: "192.168.1.21", role: "server", kind: "laptop" },
    { name: "clover1", host: "192.168.1.31", role: "agent", kind: "pi" },
  ],
  k3s: { version: "v1.33.5+k3s1" },
  image: { repository: "192.168.1.21:5000/lab/ros_demo" },
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-ssh-config-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A private key made by ssh-keygen: its file, and the text of its two halves. */
function keygen(
  name: string,
  args: readonly string[],
): { file: string; text: string; pub: string } {
  const file = path.join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-C", "", "-f", file, ...args]);
  return {
    file,
    text: fs.readFileSync(file, "utf8"),
    pub: fs.readFileSync(`${file}.pub`, "utf8"),
  };
}

const plain = keygen("id_ed25519", ["-t", "ed25519", "-N", ""]);
const locked = keygen("id_locked", ["-t", "ed25519", "-N", "correct horse"]);
const lockedPem = keygen("id_pem", ["-t", "ecdsa", "-m", "PEM", "-N", "correct horse"]);
const plainPem = keygen("id_pem_plain", ["-t", "ecdsa", "-m", "PEM", "-N", ""]);

function check(config: Record<string, unknown>, env: Partial<ParseEnv> = {}) {
  const result = parseLab(configValues(config), { sshAgent: () => "unset", ...env });
  return result.ok
    ? { ok: true as const, settings: result.settings }
    : {
        ok: false as const,
        lines: result.problems.map((p: Problem) => `${p.path}: ${p.message}`),
      };
}

describe("config: how rosfleet logs in to the machines", () => {
  it("refuses a lab it could not log in to: no agent, no key, naming sshPrivateKey and ssh-add", () => {
    const r = check(lab);
    assert.equal(r.ok, false);
    assert.equal(r.ok ? 0 : r.lines.length, 1);
    const line = r.ok ? "" : (r.lines[0] ?? "");
    assert.match(line, /^sshPrivateKey: no way to log in to laptop and 1 more: no key is set/);
    assert.match(line, /SSH_AUTH_SOCK is not set/);
    assert.match(line, /ssh-add ~\/\.ssh\/id_ed25519/);
    assert.match(line, /pulumi config set ssh\.privateKeyFile/);
    assert.match(line, /pulumi config set --secret sshPrivateKey/);
    const stale = check(lab, { sshAgent: () => "stale" });
    assert.match(stale.ok ? "" : (stale.lines[0] ?? ""), /SSH_AUTH_SOCK names no socket/);
  });

  it("needs no agent for a lab of this machine alone, nor when a key is given", () => {
    const dev = {
      ...lab,
      machines: [{ name: "dev", host: "localhost", role: "server", kind: "laptop" }],
    };
    assert.ok(check(dev).ok);
    assert.ok(check(lab, { sshAgent: () => "running" }).ok);
    assert.ok(check({ ...lab, sshPrivateKey: plain.text }).ok);
  });

  it("reads ssh.privateKeyFile (~/ is home, relative is the project) once the file is a usable key", () => {
    const reads: string[] = [];
    const readFile = (f: string) => {
      reads.push(f);
      return f === plain.file ? plain.text : undefined;
    };
    const r = check({ ...lab, ssh: { user: "ubuntu", privateKeyFile: plain.file } }, { readFile });
    assert.ok(r.ok, r.ok ? "" : r.lines.join("\n"));
    assert.equal(r.settings.sshPrivateKeyFile, plain.file);
    assert.deepEqual(reads, [plain.file]);
    const home = check(
      { ...lab, ssh: { user: "ubuntu", privateKeyFile: "~/.ssh/id_lab" } },
      { readFile: () => plain.text },
    );
    assert.equal(
      home.ok && home.settings.sshPrivateKeyFile,
      path.join(os.homedir(), ".ssh/id_lab"),
    );
    const relative = check(
      { ...lab, ssh: { user: "ubuntu", privateKeyFile: "keys/lab" } },
      { readFile: () => plain.text },
    );
    assert.equal(relative.ok && relative.settings.sshPrivateKeyFile, path.resolve("keys/lab"));
  });

  it("names a missing, public, passphrase-protected or doubly given key, never quoting one", () => {
    const withFile = (file: string) => ({ ...lab, ssh: { user: "ubuntu", privateKeyFile: file } });
    const files = new Map([
      [plain.file, plain.text],
      [`${plain.file}.pub`, plain.pub],
      [locked.file, locked.text],
    ]);
    const env = { readFile: (f: string) => files.get(f) };
    const lines = (config: Record<string, unknown>) => {
      const r = check(config, env);
      assert.equal(r.ok, false);
      return r.ok ? [] : r.lines;
    };
    assert.deepEqual(lines(withFile(path.join(dir, "nope"))), [
      `ssh.privateKeyFile: no readable file at ${JSON.stringify(path.join(dir, "nope"))} (a path relative to the project directory or ~/…)`,
    ]);
    assert.deepEqual(lines(withFile(`${plain.file}.pub`)), [
      `ssh.privateKeyFile: ${JSON.stringify(`${plain.file}.pub`)} is a public key (the .pub file): give the private half, the file without .pub`,
    ]);
    const [lockedLine = ""] = lines(withFile(locked.file));
    assert.match(lockedLine, /^ssh\.privateKeyFile: .* is protected by a passphrase/);
    assert.match(lockedLine, /ssh-add ~\/\.ssh\/id_ed25519/);
    assert.deepEqual(lines({ ...withFile(plain.file), sshPrivateKey: plain.text }), [
      "ssh.privateKeyFile: sshPrivateKey is set too: keep one (pulumi config rm sshPrivateKey, or pulumi config rm ssh.privateKeyFile)",
    ]);
    const inline = lines({ ...lab, sshPrivateKey: locked.text });
    assert.match(inline[0] ?? "", /^sshPrivateKey: is protected by a passphrase/);
    const body = locked.text.split("\n")[1] ?? "";
    for (const line of [lockedLine, ...inline]) assert.ok(!line.includes(body), "quotes the key");
  });

  it("tells an unencrypted key from a passphrase-protected one in both formats ssh-keygen writes", () => {
    assert.equal(privateKeyProblem(plain.text), undefined);
    assert.equal(privateKeyProblem(plainPem.text), undefined);
    assert.match(privateKeyProblem(locked.text) ?? "", /passphrase/);
    assert.match(privateKeyProblem(lockedPem.text) ?? "", /passphrase/);
    assert.match(privateKeyProblem("PuTTY-User-Key-File-3: ssh-ed25519\n") ?? "", /puttygen/);
    assert.equal(privateKeyProblem("hunter2"), "expected a PEM or OpenSSH private key");
  });

  it("finds the agent by SSH_AUTH_SOCK: unset, a live socket, or a path with none", async () => {
    assert.equal(sshAgentState(undefined), "unset");
    assert.equal(sshAgentState(""), "unset");
    assert.equal(sshAgentState(plain.file), "stale");
    assert.equal(sshAgentState(path.join(dir, "gone.sock")), "stale");
    const sock = path.join(dir, "agent.sock");
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      assert.equal(sshAgentState(sock), "running");
    } finally {
      server.close();
    }
  });
});
