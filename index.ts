// rosfleet: read the lab's stack config, create the stages, export the outputs (DESIGN.md).
import { readLabConfig } from "./components/config";

// Stage 1 — config: validated whole before any resource is declared.
export const lab = readLabConfig();
