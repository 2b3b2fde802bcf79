import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../agent/telemetry/logger.js';

describe('createLogger', () => {
  it('writes JSON lines and redacts secrets wherever a component puts them', () => {
    const lines: string[] = [];
    const destination = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) });
    const logger = createLogger({ level: 'info', format: 'auto', destination: destination as never }).child({ component: 'test' });
    logger.info(
      { headers: { authorization: 'Bearer s3cret-a' }, token: 's3cret-b', receiver: { webhookUrl: 'https://hooks.example/s3cret-c', apiKey: 's3cret-d' } },
      'hello',
    );
    const record = JSON.parse(lines[0]!);
    expect(record).toMatchObject({
      level: 30,
      component: 'test',
      msg: 'hello',
      token: '[redacted]',
      headers: { authorization: '[redacted]' },
      receiver: { webhookUrl: '[redacted]', apiKey: '[redacted]' },
    });
    expect(lines.join('')).not.toContain('s3cret');
  });

  it('respects the level', () => {
    const lines: string[] = [];
    const destination = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) });
    const logger = createLogger({ level: 'warn', format: 'json', destination: destination as never });
    logger.info('quiet');
    logger.warn('loud');
    expect(lines.map((line) => JSON.parse(line).msg)).toEqual(['loud']);
  });
});
