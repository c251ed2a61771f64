// How long the program takes to start: what the Pulumi CLI's nodejs language host does before
// the first resource registration — ts-node registered the way the SDK's run.ts does (its
// `transpileOnly` from the tsconfig's `noCheck`, read by the SDK's own loader) and index.ts
// required — for the project's tsconfig (type-checked) and Pulumi.yaml's (transpile-only), each
// in fresh processes. Prints a table; exits non-zero when the transpile-only start is not faster.
import { execFileSync } from "node:child_process";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const RUNS = 3;

/** One cold start in a new node process; its wall time in ms. */
function start(tsconfig: string): number {
  const script = `
    const t0 = process.hrtime.bigint();
    const tsutils = require("@pulumi/pulumi/tsutils");
    const transpileOnly = tsutils.loadTypeScriptCompilerOptions(${JSON.stringify(tsconfig)}).noCheck;
    require("ts-node").register({ transpileOnly, project: ${JSON.stringify(tsconfig)}, compilerOptions: {} });
    require("./index.ts");
    process.stdout.write(String(Number(process.hrtime.bigint() - t0) / 1e6));`;
  return Number(execFileSync(process.execPath, ["-e", script], { cwd: ROOT, encoding: "utf8" }));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = ["tsconfig.json", "tsconfig.pulumi.json"].map((tsconfig) => {
  const times = Array.from({ length: RUNS }, () => start(path.join(ROOT, tsconfig)));
  return { tsconfig, ms: median(times) };
});
console.log(
  `program start (ts-node register + load index.ts), median of ${RUNS}, node ${process.version}`,
);
console.log("tsconfig               type-check  seconds");
for (const r of rows)
  console.log(
    `${r.tsconfig.padEnd(22)} ${(r.tsconfig === "tsconfig.json" ? "yes" : "no").padEnd(11)} ${(r.ms / 1000).toFixed(2)}`,
  );
if (rows[1].ms >= rows[0].ms) {
  console.log("  transpile-only is not faster");
  process.exitCode = 1;
}
