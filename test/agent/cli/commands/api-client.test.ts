import { describe, expect, it } from 'vitest';
import { parseAgentUrl } from '../../../../agent/cli/commands/api-client.js';
import { UsageError } from '../../../../config/errors.js';
import { cli } from '../../../helpers/cli.js';

const PASSWORD = 'SECRETcliPassw0rd42';

/** Every 10 characters of the password: no part of it may be printed. */
const fragments = Array.from({ length: PASSWORD.length - 9 }, (_, start) => PASSWORD.slice(start, start + 10));

describe('--url with credentials in it (regression: the password printed, and tail crashed with a stack trace)', () => {
  const urls = [
    // Not a URL at all (a port out of range): nothing can tell where the password ends.
    `http://ops:${PASSWORD}@127.0.0.1:99999`,
    `http://ops:pa/${PASSWORD}@127.0.0.1:99999`,
    `not a url ?token=${PASSWORD}`,
    // URLs, refused for their credentials or their scheme.
    `http://ops:${PASSWORD}@127.0.0.1:1`,
    `http://${PASSWORD}@127.0.0.1:1`,
    `ftp://ops:${PASSWORD}@127.0.0.1:1`,
  ];
  it.each(['flags list', 'tail', 'report'])('greenlight %s exits 2 with a usage message that never quotes the password', async (command) => {
    for (const url of urls) {
      const run = await cli([...command.split(' '), '--url', url], { ADMIN_TOKEN: 'admin-token-123' });
      expect(run.code, url).toBe(2);
      expect(run.stderr, url).toContain(`greenlight ${command.split(' ')[0]}: --url`);
      expect(run.stderr, url).not.toContain('    at ');
      for (const fragment of fragments) expect(`${run.stdout}${run.stderr}`, url).not.toContain(fragment);
    }
  });

  it('quotes a --url that is no URL without its user information and query', () => {
    const message = (text: string) => {
      try {
        parseAgentUrl(text);
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        return (error as UsageError).message;
      }
      throw new Error(`${text} was taken`);
    };
    expect(message('not a url')).toContain('--url "not a url" is not a URL');
    expect(message(`http://ops:${PASSWORD}@127.0.0.1:99999/agent`)).toContain('--url "http://[redacted]@127.0.0.1:99999/agent" is not a URL');
    expect(message(`127.0.0.1:9464?token=${PASSWORD}`)).toContain('--url "127.0.0.1:9464?[redacted]" is not a URL');
    expect(parseAgentUrl().href).toBe('http://127.0.0.1:9464/');
  });
});
