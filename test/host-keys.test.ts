// SSH host keys pinned on first use (components/config/host-keys.ts, common/ssh-host-keys.ts):
// which key is pinned, where the pin is kept, and that a machine answering with another key stops
// the run before any step. Keys and fingerprints are checked against this machine's ssh-keygen;
// the machines themselves are made up (the SSH tier scans a real sshd: test/ssh/hostkeys.test.ts).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  HostKey,
  describeKey,
  fingerprint,
  keyLine,
  parseHostKey,
  parseKeyscan,
  preferredKey,
} from "../components/common/ssh-host-keys";
import { labFromState } from "../components/config/last-update";
import { ProgramRun, fakeHostKey, fakeHostKeyLine, runProgram, stateOf } from "./helpers/program";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-hostkeys-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A key made by ssh-keygen: its public line and ssh-keygen's own fingerprint line. */
function keygen(type: string): { key: HostKey; line: string; listed: string } {
  const file = path.join(dir, `${type}-${Math.random().toString(36).slice(2)}`);
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "", "-f", file]);
  const line = fs.readFileSync(`${file}.pub`, "utf8").trim();
  const key = parseHostKey(line);
  assert.ok(key !== undefined, line);
  const listed = execFileSync("ssh-keygen", ["-l", "-f", `${file}.pub`], { encoding: "utf8" });
  return { key, line, listed };
}

const LAB = {
  ssh: { user: "ubuntu" },
  machines: [
    { name: "laptop", host: "192.168.1.21", role: "server", kind: "laptop" },
    { name: "pi1", host: "192.168.1.31", role: "agent", kind: "pi" },
  ],
  k3s: { version: "v1.33.5+k3s1" },
  image: { repository: "r/ros_demo" },
  deliveryCheck: { enabled: false },
};

const connection = (run: ProgramRun, name: string): Record<string, unknown> =>
  run.get("command:remote:Command", name).inputs["connection"] as Record<string, unknown>;

/** Every remote step of the run: where it connects and with which host key. */
const stepKeys = (run: ProgramRun): Record<string, { host: unknown; hostKey: unknown }> =>
  Object.fromEntries(
    run.resources
      .filter((r) => r.type === "command:remote:Command")
      .map((r) => {
        const c = r.inputs["connection"] as Record<string, unknown>;
        return [r.name, { host: c["host"], hostKey: c["hostKey"] }];
      }),
  );

describe("ssh host keys: reading and choosing them", () => {
  it("fingerprints a key as ssh-keygen -l does", () => {
    for (const type of ["ed25519", "ecdsa", "rsa"]) {
      const { key, listed } = keygen(type);
      assert.ok(listed.includes(` ${fingerprint(key)} `), `${listed} vs ${fingerprint(key)}`);
      assert.ok(listed.trim().endsWith(`(${describeKey(key).split(" ")[0]})`), listed);
    }
  });

  it("takes a key line only when its blob is of the type it names", () => {
    const { key } = keygen("ed25519");
    assert.deepEqual(parseHostKey(`${keyLine(key)} comment`), key);
    assert.equal(parseHostKey(`ecdsa-sha2-nistp256 ${key.blob}`), undefined);
    assert.equal(parseHostKey("ssh-ed25519 not-base64!"), undefined);
    assert.equal(parseHostKey("ssh-dss AAAAB3NzaC1kc3MAAACBAP"), undefined);
  });

  it("pins the key Go's SSH client is shown first: ECDSA, then RSA, then Ed25519", () => {
    const ed = keygen("ed25519").key;
    const rsa = keygen("rsa").key;
    const ecdsa = keygen("ecdsa").key;
    assert.deepEqual(preferredKey([ed, rsa, ecdsa]), ecdsa);
    assert.deepEqual(preferredKey([ed, rsa]), rsa);
    assert.deepEqual(preferredKey([ed]), ed);
    assert.equal(preferredKey([]), undefined);
  });

  it("reads ssh-keyscan's lines, its comments and a non-default port's [host]:port", () => {
    const ed = keygen("ed25519");
    const ecdsa = keygen("ecdsa");
    const out = [
      "# 10.0.0.5:2222 SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
      `[10.0.0.5]:2222 ${ed.line}`,
      `[10.0.0.5]:2222 ${ecdsa.line}`,
      "",
    ].join("\n");
    assert.deepEqual(parseKeyscan(out), [ed.key, ecdsa.key]);
  });
});

describe("ssh host keys: pinned on first use, kept in the state, a change refused", () => {
  it("pins each machine's key on first use and connects every step of it with that key", async () => {
    const run = await runProgram(LAB);
    const keys = stepKeys(run);
    assert.ok(Object.keys(keys).length >= 6, JSON.stringify(keys));
    assert.ok(Object.keys(keys).includes("pi1-join"), JSON.stringify(keys));
    for (const [step, { host, hostKey }] of Object.entries(keys))
      assert.equal(hostKey, fakeHostKeyLine(String(host)), step);
    // The pin lives in the state (the steps' connection), read back as the last update's.
    const previous = labFromState(stateOf(run));
    assert.deepEqual(previous.hostKeys, {
      laptop: { address: "192.168.1.21:22", key: fakeHostKeyLine("192.168.1.21") },
      pi1: { address: "192.168.1.31:22", key: fakeHostKeyLine("192.168.1.31") },
    });
  });

  it("keeps the pin on the next run: the same key, no change", async () => {
    const first = await runProgram(LAB);
    const scans: string[] = [];
    const second = await runProgram(LAB, {
      previousState: stateOf(first),
      hostKeys: (host) => {
        scans.push(host);
        return Promise.resolve({ ok: true, keys: [fakeHostKey(host)] });
      },
    });
    assert.deepEqual(stepKeys(second), stepKeys(first));
    assert.deepEqual(scans.sort(), ["192.168.1.21", "192.168.1.31"]);
  });

  it("refuses a machine that answers with another key, naming it and the command that accepts it", async () => {
    const first = await runProgram(LAB);
    const reflashed = fakeHostKey("192.168.1.31", "re-flashed");
    const err = await runProgram(LAB, {
      previousState: stateOf(first),
      hostKeys: (host) =>
        Promise.resolve({
          ok: true,
          keys: [host === "192.168.1.31" ? reflashed : fakeHostKey(host)],
        }),
    }).then(
      () => assert.fail("a changed host key was accepted"),
      (e: Error) => e,
    );
    const lines = err.message.split("\n");
    assert.equal(lines[0], "invalid rosfleet stack configuration (1 problem):");
    assert.equal(lines.length, 2, err.message);
    const old = describeKey(fakeHostKey("192.168.1.31"));
    assert.ok(
      lines[1]?.startsWith(
        `  machines[1].hostKey: pi1 at 192.168.1.31:22 answers with other SSH host keys than the one pinned on first use (${old}; it now offers ${describeKey(reflashed)}): nothing was sent to it and no step ran.`,
      ),
      lines[1],
    );
    assert.ok(
      lines[1]?.includes(
        `accept its new key: pulumi config set --path 'machines[1].hostKey' '${keyLine(reflashed)}'`,
      ),
      lines[1],
    );
  });

  it("takes a re-flashed machine's new key once the stack pins it (machines[].hostKey wins)", async () => {
    const first = await runProgram(LAB);
    const reflashed = fakeHostKey("192.168.1.31", "re-flashed");
    const accepted = structuredClone(LAB);
    (accepted.machines[1] as Record<string, unknown>)["hostKey"] = keyLine(reflashed);
    const run = await runProgram(accepted, {
      previousState: stateOf(first),
      hostKeys: (host) =>
        Promise.resolve({
          ok: true,
          keys: [host === "192.168.1.31" ? reflashed : fakeHostKey(host)],
        }),
    });
    assert.equal(connection(run, "pi1-preflight")["hostKey"], keyLine(reflashed));
    assert.equal(connection(run, "laptop-preflight")["hostKey"], fakeHostKeyLine("192.168.1.21"));
  });

  it("holds a renamed machine to the pin of its address", async () => {
    const first = await runProgram(LAB);
    const renamed = { ...LAB, machines: [LAB.machines[0], { ...LAB.machines[1], name: "robot1" }] };
    const run = await runProgram(renamed, {
      previousState: stateOf(first),
      hostKeys: (host) =>
        Promise.resolve({
          ok: true,
          keys: [fakeHostKey(host, host === "192.168.1.31" ? "x" : "")],
        }),
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(
      run instanceof Error && run.message.includes("robot1 at 192.168.1.31:22"),
      String(run),
    );
  });

  it("at up, refuses a machine whose key it cannot read and has never pinned; at preview, warns", async () => {
    const silent = (host: string) =>
      Promise.resolve(
        host === "192.168.1.31"
          ? { ok: false as const, reason: "no SSH server answered within 5 s" }
          : { ok: true as const, keys: [fakeHostKey(host)] },
      );
    await assert.rejects(runProgram(LAB, { hostKeys: silent }), (err: Error) => {
      assert.match(
        err.message,
        /machines\[1\]\.hostKey: cannot read pi1's SSH host key at 192\.168\.1\.31:22 \(no SSH server answered within 5 s\): rosfleet pins each machine's key on first use and sends it nothing before/,
      );
      return true;
    });
    const preview = await runProgram(LAB, { hostKeys: silent, preview: true });
    assert.equal(connection(preview, "pi1-preflight")["hostKey"], undefined);
    assert.equal(
      connection(preview, "laptop-preflight")["hostKey"],
      fakeHostKeyLine("192.168.1.21"),
    );
  });

  it("goes on with the pin when a pinned machine does not answer (its steps need it anyway)", async () => {
    const first = await runProgram(LAB);
    const run = await runProgram(LAB, {
      previousState: stateOf(first),
      hostKeys: () => Promise.resolve({ ok: false, reason: "Connection refused" }),
    });
    assert.equal(connection(run, "pi1-preflight")["hostKey"], fakeHostKeyLine("192.168.1.31"));
  });

  it("uses a configured key of a type it does not read as it is, and scans nothing for it", async () => {
    const dss = "ssh-dss AAAAB3NzaC1kc3MAAACBAP";
    const scans: string[] = [];
    const run = await runProgram(
      { ...LAB, machines: [LAB.machines[0], { ...LAB.machines[1], hostKey: dss }] },
      {
        hostKeys: (host) => {
          scans.push(host);
          return Promise.resolve({ ok: true, keys: [fakeHostKey(host)] });
        },
      },
    );
    assert.equal(connection(run, "pi1-preflight")["hostKey"], dss);
    assert.deepEqual(scans, ["192.168.1.21"]);
  });

  it("scans no machine reached as localhost", async () => {
    const scans: string[] = [];
    await runProgram(
      {
        machines: [{ name: "dev", host: "localhost", role: "server", kind: "laptop" }],
        k3s: { version: "v1.33.5+k3s1" },
        image: { repository: "r/ros_demo" },
        deliveryCheck: { enabled: false },
      },
      {
        hostKeys: (host) => {
          scans.push(host);
          return Promise.resolve({ ok: false, reason: "unexpected" });
        },
      },
    );
    assert.deepEqual(scans, []);
  });
});
