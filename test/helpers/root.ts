// Points a rendered script at a test machine's filesystem: every `ROOT=''` parameter — also
// the one of the join script that install.sh carries quoted inside JOIN_SCRIPT — gets `root`.
export function rooted(script: string, root: string): string {
  return script
    .replace(/^ROOT=''$/gm, `ROOT='${root}'`)
    .replace(/\nROOT='\\'''\\''\n/g, `\nROOT='\\''${root}'\\''\n`);
}
