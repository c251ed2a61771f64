// test/helpers/debian-mirror.sh, which the tiers that debootstrap a root (test/e2e/lab.ts,
// test/image/images.sh) ask for the machine's own Debian mirror: run by bash against apt
// configurations written to a temp dir, in both of apt's formats.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const SCRIPT = path.join(__dirname, "helpers", "debian-mirror.sh");

/** An /etc/apt of the given files (path under it → content). */
function aptEtc(files: Record<string, string>): string {
  const etc = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-apt-"));
  fs.mkdirSync(path.join(etc, "sources.list.d"));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(etc, name), text);
  return etc;
}

function mirror(etc: string, env: Record<string, string> = {}, suite = "bookworm") {
  const base = { ...process.env };
  delete base["DEBIAN_MIRROR"];
  const r = spawnSync("bash", [SCRIPT, suite], {
    encoding: "utf8",
    env: { ...base, APT_ETC: etc, ...env },
  });
  return { status: r.status, out: r.stdout.trim(), err: r.stderr };
}

describe("test helper: the machine's Debian mirror", () => {
  it("takes the URI of the deb822 stanza for the suite, not a security or disabled one", () => {
    const etc = aptEtc({
      "sources.list.d/debian.sources": [
        "Types: deb",
        "URIs: http://mirror.lab.example/debian-security",
        "Suites: bookworm-security",
        "Components: main",
        "",
        "# a mirror the admin switched off",
        "Types: deb",
        "URIs: http://old.lab.example/debian",
        "Suites: bookworm",
        "Enabled: no",
        "",
        "Types: deb-src deb",
        "URIs: http://mirror.lab.example/debian/ http://second.lab.example/debian",
        "Suites: bookworm bookworm-updates",
        "Components: main",
        "",
      ].join("\n"),
    });
    assert.deepEqual(mirror(etc), { status: 0, out: "http://mirror.lab.example/debian", err: "" });
  });

  it("reads one-line sources lists, options included", () => {
    const etc = aptEtc({
      "sources.list":
        "# deb http://commented.example/debian bookworm main\n" +
        "deb-src http://src.example/debian bookworm main\n" +
        "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://proxy.lab:3142/debian bookworm main\n",
    });
    assert.equal(mirror(etc).out, "http://proxy.lab:3142/debian");
  });

  it("falls back to the mirror of the machine's own release when no source names the suite", () => {
    const etc = aptEtc({
      "sources.list.d/debian.sources":
        "Types: deb\nURIs: http://sec.example/debian-security\nSuites: trixie-security\n\n" +
        "Types: deb\nURIs: http://trixie.example/debian\nSuites: trixie trixie-updates\n",
    });
    assert.equal(mirror(etc).out, "http://trixie.example/debian");
  });

  it("fails naming DEBIAN_MIRROR when apt has no Debian source, and DEBIAN_MIRROR wins", () => {
    const etc = aptEtc({
      "sources.list": "deb http://sec.example/debian-security bookworm-security main\n",
    });
    const r = mirror(etc);
    assert.equal(r.status, 1);
    assert.equal(r.out, "");
    assert.match(r.err, /no 'deb' source for suite 'bookworm'.*set DEBIAN_MIRROR/);
    assert.equal(
      mirror(etc, { DEBIAN_MIRROR: "http://given.example/debian" }).out,
      "http://given.example/debian",
    );
  });
});
