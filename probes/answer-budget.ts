/**
 * A bound on how much a target can make the agent read for one answer, whatever the bytes are.
 *
 * The probe's own limits (maxBodyBytes, MAX_BODY_PIECES in http-probe.ts) count the body as undici
 * hands it over, and undici bounds one header block (16 KiB). Other bytes reach neither: interim
 * 1xx answers, each with a header block of its own, sent without end; a chunk extension
 * (`1;aaaa…`) that never ends; blank lines before the status line or between answers. undici's
 * parser reads them all without a callback, so such a target kept the agent parsing at the
 * network's speed until the probe's deadline: one series of each kind took half a core, and every
 * other series' latency rose tenfold while it lasted.
 *
 * The budget is on the socket: every connection the probes' dispatcher opens is destroyed, with an
 * {@link AnswerTooLargeError} (reason `body_too_large`), once it has read more than the limit
 * since the agent last wrote to it (a request is written before its answer is read, and a
 * keep-alive connection carries one request at a time). The limit is the largest maxBodyBytes of
 * the config's probes plus {@link ANSWER_OVERHEAD_BYTES} for the rest of an honest answer.
 *
 * The bytes are counted from the socket's `bytesRead` at each 'readable' event, before undici's own
 * listener reads them, so what passes the budget is never parsed; a listener of that event changes
 * nothing in how the socket is read.
 */
import type { Socket } from 'node:net';
import type * as Undici from 'undici';
import type { Config } from '../config/schema.js';

/**
 * What an honest answer may carry beyond its body: a header block and trailers (16 KiB each in
 * undici), a few interim answers, and the framing of a body in up to MAX_BODY_PIECES chunks
 * (16,384 chunk lines of 64 bytes).
 */
export const ANSWER_OVERHEAD_BYTES = 1_048_576;

/** Stable code of the error a connection is destroyed with once it passes its budget. */
export const ANSWER_TOO_LARGE = 'GL_PROBE_ANSWER_TOO_LARGE';

/** A connection read more than its budget for one answer. */
export class AnswerTooLargeError extends Error {
  readonly code = ANSWER_TOO_LARGE;

  constructor(readonly limit: number) {
    super(
      `the answer passed ${limit} bytes without ending (status lines, headers, interim 1xx answers, chunk framing and body together): greenlight stops reading a target that sends without end`,
    );
    this.name = 'AnswerTooLargeError';
  }
}

/** The budget for a config's probes: their largest maxBodyBytes, plus the rest of an answer. */
export function answerLimit(config: Config): number {
  let largest = config.probeDefaults.maxBodyBytes;
  for (const probe of config.probes) largest = Math.max(largest, probe.maxBodyBytes ?? 0);
  return largest + ANSWER_OVERHEAD_BYTES;
}

/** Wraps a connector so that every socket it opens keeps to the budget; the limit can change (a reload). */
export class AnswerBudget {
  #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get limit(): number {
    return this.#limit;
  }

  /** A new limit (a reload), for the connections open as for those to come. */
  setLimit(limit: number): void {
    this.#limit = limit;
  }

  /** `connect`, with every socket it opens watched. */
  wrap(connect: Undici.buildConnector.connector): Undici.buildConnector.connector {
    return (options, callback) =>
      connect(options, (error, socket) => {
        if (error) return callback(error, null);
        // After undici has added its listeners (in the callback), so that this one goes before them.
        callback(null, socket!);
        watch(socket!, this);
      });
  }
}

function watch(socket: Socket, budget: AnswerBudget): void {
  let written = socket.bytesWritten;
  let answerStart = socket.bytesRead;
  let seen = socket.bytesRead;
  socket.prependListener('readable', () => {
    // Whatever was read before a new request was written belongs to earlier answers.
    if (socket.bytesWritten !== written) {
      written = socket.bytesWritten;
      answerStart = seen;
    }
    seen = socket.bytesRead;
    if (seen - answerStart > budget.limit && !socket.destroyed) socket.destroy(new AnswerTooLargeError(budget.limit));
  });
}
