/**
 * V8 settings a greenlight process runs with, applied by the CLI as it starts (`applyRuntimeFlags`)
 * so that every launcher gets them (Node does not take them in NODE_OPTIONS); the benches pass
 * them on the command line instead, which is the same.
 *
 * - `--heap-growing-percent=50`: after each full collection V8 lets the old generation grow to
 *   1.5 times what survived, not up to 4 times. A guard probing thousands of series makes
 *   garbage fast, and the default let the heap of 4,000 series reach 300 MB around 80 MB that
 *   were alive: RSS went from about 455 MB to 277 MB, with no measurable CPU cost (16 s runs
 *   of the forked bench agent, issue 18; `npm run bench -- --scale` shows 249–254 MB there).
 *
 * (`--max-semi-space-size=2`, the other setting, sizes the young generation when the heap is
 * made, so it has to be on the command line: the `bin/greenlight.js` shebang, NODE_OPTIONS.)
 */
import { setFlagsFromString } from 'node:v8';

export const RUNTIME_V8_FLAGS: readonly string[] = ['--heap-growing-percent=50'];

export function applyRuntimeFlags(): void {
  for (const flag of RUNTIME_V8_FLAGS) setFlagsFromString(flag);
}
