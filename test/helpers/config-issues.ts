import { expect } from 'vitest';
import { ConfigError, formatConfigIssue } from '../../config/errors.js';

/** The issues `parse` reports for `text`, each as `path: message (line N)`; fails the test when it accepts the text. */
export function issuesOf(parse: (text: string, env: Record<string, string>) => unknown, text: string, env: Record<string, string> = {}): string[] {
  try {
    parse(text, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map(formatConfigIssue);
  }
  throw new Error('expected the config to be rejected');
}
