/**
 * Remote text on a terminal. Probe answers, error pages, reasons typed into the API and program
 * output reach a person's terminal through `greenlight tail`, the pretty log and the CLI; a
 * control character in them is an instruction to that terminal (ESC[2J clears the screen, CR
 * rewrites the line, BEL rings, ESC]8 makes links, C1 CSI U+009B is ESC[ to many terminals).
 * Everything human-readable that greenlight prints passes through here, and every such character
 * becomes visible text (`\u001b`) instead.
 */

/**
 * C0 controls, DEL, C1 controls, the Unicode line and paragraph separators, and the bidirectional
 * overrides and isolates (text that displays in another order than it reads).
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const IS_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function visible(char: string): string {
  return SHORT[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * `text` with every control character written out (`\u001b`, `\r`, `\n`), so that it prints as
 * one line that does nothing to the terminal. `keepLines` keeps newlines and tabs (multi-line
 * program output, stack traces).
 */
export function escapeControls(text: string, keepLines = false): string {
  return text.replace(keepLines ? CONTROL_BUT_LINES : CONTROL, visible);
}

/** The only escape sequences greenlight prints itself: tail's severity colors and their reset. */
const OWN_COLORS = /\u001b\[(?:0|3[136])m/y;

/**
 * What the CLI writes to a terminal: every control character escaped as in escapeControls (lines
 * and tabs kept: tables and pretty JSON span lines) except greenlight's own four color
 * sequences. JSON stays the same JSON (a raw control can only sit inside a string, where `\u0085`
 * means the same).
 */
export function escapeForTerminal(text: string): string {
  return text.replace(CONTROL_BUT_LINES, (char, offset: number) => {
    OWN_COLORS.lastIndex = offset;
    return char === '\u001b' && OWN_COLORS.test(text) ? char : visible(char);
  });
}

/**
 * A JSON text (one log line, one event) made safe for a terminal while staying the same JSON:
 * JSON.stringify escapes C0 controls but leaves DEL, C1 controls and U+2028/U+2029 raw; they
 * are escaped here. With `forDisplay`, the control characters a reader will unescape are escaped
 * once more (`\\u001b`), so that a pretty-printer that parses the line prints them as text;
 * newlines and tabs stay, for stack traces.
 */
export function escapeJsonControls(json: string, forDisplay = false): string {
  return json.replace(
    /\\(?:u00[01][0-9a-fA-F]|u007[fF]|u00[89][0-9a-fA-F]|[bfnrt"\\/]|u[0-9a-fA-F]{4})|[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (match) => {
      if (match.length === 1) return `${forDisplay ? '\\\\' : '\\'}u${match.charCodeAt(0).toString(16).padStart(4, '0')}`;
      if (!forDisplay) return match;
      const char = JSON.parse(`"${match}"`) as string;
      return char === '\n' || char === '\t' || !IS_CONTROL.test(char) ? match : `\\${escapeControls(char)}`;
    },
  );
}
