import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { regexProblem, userRegex } from '../../config/user-regex.js';

/**
 * Run a match in a worker, so that a match that never ends fails the test instead of hanging the
 * file. The worker runs plain JavaScript: V8's settings are the process's, so what userRegex set
 * in this thread holds there too.
 */
function matchInWorker(source: string, input: string, limitMs: number): Promise<boolean | 'still running'> {
  const worker = new Worker(`require('node:worker_threads').parentPort.postMessage(new RegExp(${JSON.stringify(source)}).test(${JSON.stringify(input)}))`, {
    eval: true,
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      resolve('still running');
      void worker.terminate();
    }, limitMs);
    worker.once('message', (result: boolean) => {
      clearTimeout(timer);
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

describe('regular expressions an operator writes', () => {
  it.each([
    ['(a)\\1', 'back-references'],
    ['(?=a)b', 'look-arounds'],
    ['(?<!x)y', 'look-arounds'],
    ['(a{1,100}){1,100}', 'repeat counts in the hundreds'],
  ])('refuses %s, which only a backtracking engine can run', (source, named) => {
    expect(regexProblem(source)).toContain(named);
  });

  it.each(['^(?:live-.*)$', '"status":\\s*"ok"', '\\bok\\b', '(a+)+$', '(x|xx)*y', '^\\d+\\.\\d+$', '(?<version>v\\d+)'])('accepts %s', (source) => {
    expect(regexProblem(source)).toBeUndefined();
  });

  it('names the parser’s complaint for a pattern that is not one', () => {
    expect(regexProblem('((')).toBe('is not a valid regular expression: Invalid regular expression: /((/: Unterminated group');
  });

  it('finishes a match that would backtrack for ever: (a+)+$ against 64 a and a b', async () => {
    const pattern = userRegex('^(?:(a+)+)$');
    expect(pattern.test('aaa')).toBe(true);
    // Without the fallback this is 2^64 steps. 20 s is a bound on a hang, not a speed target.
    await expect(matchInWorker('^(?:(a+)+)$', `${'a'.repeat(64)}b`, 20_000)).resolves.toBe(false);
    await expect(matchInWorker('(x|xx)*y', 'x'.repeat(5_000), 20_000)).resolves.toBe(false);
  });
});
