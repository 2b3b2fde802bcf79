/**
 * V8 settings a greenlight process runs with, applied by the CLI as it starts (`applyRuntimeFlags`)
 * so that every launcher gets them (Node does not take them in NODE_OPTIONS); the benches pass
 * them on the command line instead, which is the same.
 *
 * - `--no-allocation-site-pretenuring`: V8 watches where objects are made, and once most of a
 *   place's objects outlive two young collections it makes them in the old generation from then
 *   on, where it no longer sees them die young. In the agent it did so for undici's response
 *   headers (most likely in the first seconds, when every series starts at once and answers
 *   queue): in service they live a millisecond, yet each became garbage that only a full
 *   collection clears. At 4,000 series 9.4 MB a second went to the old generation, 2.0 MB without
 *   it (sampled heap profiles of what outlived a young collection, issue 18;
 *   docs/scale/flags-13.txt).
 * - `--heap-growing-percent=25`: after each full collection V8 lets the old generation grow to
 *   1.25 times what survived, not up to 4 times. The default let the heap of 4,000 series reach
 *   300 MB around 80 MB that were alive (RSS about 455 MB; 277 MB at a half). That is where a
 *   process starts; `watchHeapGrowth` (heap-growth.ts) raises it to 50 % while the heap keeps
 *   growing (a start or a reload of thousands of series, where each step of growth is a full
 *   collection) and when full collections come too close together, and lowers it again once the
 *   heap holds steady.
 *
 * (`--max-semi-space-size=2`, the other setting, sizes the young generation when the heap is
 * made, so it has to be on the command line: the `bin/greenlight.js` shebang, NODE_OPTIONS. The
 * launchers also set GLIBC_TUNABLES for malloc: bench/harness.ts, LAUNCHER_ENV.)
 */
import { setFlagsFromString } from 'node:v8';
import { STEADY_PERCENT, watchHeapGrowth, type HeapGrowthWatch } from './heap-growth.js';

export const RUNTIME_V8_FLAGS: readonly string[] = [`--heap-growing-percent=${STEADY_PERCENT}`, '--no-allocation-site-pretenuring'];

let heapGrowth: HeapGrowthWatch | undefined;

/** Set the flags and start adapting the heap's growth: once a process, however often it is called. */
export function applyRuntimeFlags(): void {
  if (heapGrowth) return;
  for (const flag of RUNTIME_V8_FLAGS) setFlagsFromString(flag);
  heapGrowth = watchHeapGrowth();
}
