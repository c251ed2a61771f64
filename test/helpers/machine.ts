// A validated machine for tests of renderers and scripts: the lab notes' laptop server unless
// `over` says otherwise.
import { Machine } from "../../components/config";

export const machine = (over: Partial<Machine> = {}): Machine => ({
  name: "laptop",
  host: "192.168.1.21",
  local: false,
  role: "server",
  kind: "laptop",
  arch: "amd64",
  user: "ubuntu",
  port: 22,
  hostKey: undefined,
  nodeIp: undefined,
  flannelIface: undefined,
  labels: {},
  taints: [],
  docker: false,
  cordon: false,
  skipUninstall: false,
  adopt: false,
  ...over,
});
