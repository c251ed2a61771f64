// The user's SSH agent, as the program finds it: a socket named by SSH_AUTH_SOCK. Under mocks
// nothing logs in, so nothing answers on it; the config stage only checks that it is there
// (components/config/ssh-checks.ts), as it would in the shell of a user with a loaded agent.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

let socket: string | undefined;

/** Points SSH_AUTH_SOCK at a listening socket of this process (made once, gone at exit). */
export function provideSshAgent(): string {
  if (socket === undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-agent-"));
    const file = path.join(dir, "agent.sock");
    net
      .createServer((c) => c.destroy())
      .listen(file)
      .unref();
    process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    socket = file;
  }
  process.env["SSH_AUTH_SOCK"] = socket;
  return socket;
}
