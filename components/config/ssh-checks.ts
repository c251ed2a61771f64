// How rosfleet authenticates to the machines: a key in the stack (`sshPrivateKey`, a secret), a
// key file (`ssh.privateKeyFile`, read once and kept as a secret), or the SSH agent. Checked at
// preview, so a missing or unusable key is one config error naming the key to set, not ten
// "unable to authenticate" failures from the command provider.
import type { Problem } from "./problem";
import { Dict, MachineView, dict, isLocalHost, resolveUserPath, str } from "./raw";

/** The SSH agent the command provider would ask: SSH_AUTH_SOCK names a live socket, or not. */
export type AgentState = "running" | "unset" | "stale";

/** What the SSH rules may look at besides the configuration. */
export interface SshEnv {
  /** The file's text, or undefined when there is no readable file. */
  readonly readFile: (file: string) => string | undefined;
  /** Whether an SSH agent is there to ask: `SSH_AUTH_SOCK` names a socket. */
  readonly sshAgent: () => AgentState;
}

const LOAD_KEY = "ssh-add ~/.ssh/id_ed25519";
const SET_KEY = "pulumi config set ssh.privateKeyFile ~/.ssh/id_ed25519";

/** Whether an OpenSSH-format key (`openssh-key-v1`) is encrypted: its cipher is not "none". */
function opensshCipher(body: string): string | undefined {
  const bytes = Buffer.from(body.replace(/\s+/g, ""), "base64");
  const magic = "openssh-key-v1\0";
  if (bytes.subarray(0, magic.length).toString("latin1") !== magic) return undefined;
  if (bytes.length < magic.length + 4) return undefined;
  const length = bytes.readUInt32BE(magic.length);
  return bytes.subarray(magic.length + 4, magic.length + 4 + length).toString("latin1");
}

/**
 * Why a private key's text cannot be used by the command provider, or undefined when it can.
 * Never quotes the key.
 */
export function privateKeyProblem(text: string): string | undefined {
  if (/^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+/.test(text.trim()))
    return "is a public key (the .pub file): give the private half, the file without .pub";
  if (text.startsWith("PuTTY-User-Key-File-"))
    return "is a PuTTY key: convert it with puttygen key.ppk -O private-openssh -o id_rsa";
  const block = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----([\s\S]*?)-----END \1PRIVATE KEY-----/.exec(
    text,
  );
  if (block === null) return "expected a PEM or OpenSSH private key";
  const [, kind = "", body = ""] = block;
  const cipher = kind === "OPENSSH " ? opensshCipher(body) : undefined;
  const encrypted =
    kind === "ENCRYPTED " || /Proc-Type:\s*4,ENCRYPTED/.test(body) || (cipher ?? "none") !== "none";
  if (encrypted)
    return `is protected by a passphrase, which rosfleet does not keep: load it into your SSH agent instead (${LOAD_KEY}) and remove this key`;
  return undefined;
}

/** A key the stack gives, from either key; `sshPrivateKey` is already decrypted here. */
function givenKeyRules(raw: Dict, env: SshEnv): Problem[] {
  const inline = raw["sshPrivateKey"];
  const file = str(dict(raw, "ssh"), "privateKeyFile");
  const problems: Problem[] = [];
  if (typeof inline === "string") {
    const why = privateKeyProblem(inline);
    if (why !== undefined)
      problems.push({
        path: "sshPrivateKey",
        message: `${why} (pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519)`,
      });
  }
  if (file === undefined) return problems;
  if (inline !== undefined)
    problems.push({
      path: "ssh.privateKeyFile",
      message:
        "sshPrivateKey is set too: keep one (pulumi config rm sshPrivateKey, or pulumi config rm ssh.privateKeyFile)",
    });
  const text = env.readFile(resolveUserPath(file));
  if (text === undefined)
    problems.push({
      path: "ssh.privateKeyFile",
      message: `no readable file at ${JSON.stringify(file)} (a path relative to the project directory or ~/…)`,
    });
  else {
    const why = privateKeyProblem(text);
    if (why !== undefined)
      problems.push({ path: "ssh.privateKeyFile", message: `${JSON.stringify(file)} ${why}` });
  }
  return problems;
}

/** With no key in the stack, the agent is the only way in: it must be there. */
function agentRules(views: readonly MachineView[], env: SshEnv): Problem[] {
  const remote = views.filter((v) => v.host !== undefined && !isLocalHost(v.host));
  if (remote.length === 0) return [];
  const agent = env.sshAgent();
  if (agent === "running") return [];
  const state =
    agent === "unset"
      ? "SSH_AUTH_SOCK is not set (no SSH agent in this shell)"
      : "SSH_AUTH_SOCK names no socket (the agent of another login, since gone)";
  const first = remote[0]?.name ?? remote[0]?.path ?? "";
  return [
    {
      path: "sshPrivateKey",
      message: `no way to log in to ${first}${remote.length > 1 ? ` and ${remote.length - 1} more` : ""}: no key is set and ${state}. Start an agent and load your key (eval "$(ssh-agent)"; ${LOAD_KEY}), or name the key file (${SET_KEY}), or set the key as a secret (pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519)`,
    },
  ];
}

/** The SSH rules, when rosfleet installs k3s over SSH. */
export function sshRules(raw: Dict, views: readonly MachineView[], env: SshEnv): Problem[] {
  if (raw["cluster"] !== undefined) return [];
  const given = raw["sshPrivateKey"] !== undefined || str(dict(raw, "ssh"), "privateKeyFile");
  return given ? givenKeyRules(raw, env) : agentRules(views, env);
}
