import { fileURLToPath } from 'node:url';
import { loadPolicyFile } from './load.js';
import type { Policy } from './policy.js';

/** The policy shipped in the package. Compiled code runs from build/src/policy/, three levels below the root. */
export const defaultPolicyPath: URL = new URL('../../../policy/default.yaml', import.meta.url);

export function loadDefaultPolicy(): Promise<Policy> {
  return loadPolicyFile(fileURLToPath(defaultPolicyPath));
}
