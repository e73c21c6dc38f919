// Text → playbook: decodes YAML or JSON (pure string work, no I/O) and validates the result.
import { parse as parseYaml } from 'yaml';
import { AnxError } from '../../runtime/errors.ts';
import type { PlaybookDefinition } from './definition.ts';
import { assertPlaybook } from './validate.ts';

/** Raised when playbook text is not well-formed YAML or JSON. */
export class PlaybookParseError extends AnxError {
  constructor(format: 'yaml' | 'json', message: string, options?: { cause?: unknown }) {
    super('ANX_PLAYBOOK_PARSE', `playbook is not valid ${format.toUpperCase()}: ${message}`, {
      cause: options?.cause,
      hint: /\b(position|line) \d+/.test(message)
        ? `check the ${format.toUpperCase()} syntax at the position given`
        : `check that the ${format.toUpperCase()} text is complete and well formed (brackets, quotes, indentation)`,
    });
  }
}

/** Longest playbook text accepted; a definition is a few kilobytes, so anything near this is hostile. */
export const MAX_PLAYBOOK_TEXT = 1024 * 1024;

/**
 * Decodes playbook text into a plain object without validating it. `format` defaults to JSON when the
 * text starts with `{`, YAML otherwise.
 *
 * @example
 * ```ts
 * const raw = parsePlaybook('name: p\nversion: "1"\nstages: []\n');
 * ```
 */
export function parsePlaybook(text: string, format?: 'yaml' | 'json'): unknown {
  const fmt = format ?? (text.trimStart().startsWith('{') ? 'json' : 'yaml');
  if (text.length > MAX_PLAYBOOK_TEXT) {
    throw new PlaybookParseError(
      fmt,
      `text is ${text.length} characters, at most ${MAX_PLAYBOOK_TEXT} allowed`,
    );
  }
  try {
    if (fmt === 'json') return JSON.parse(text) as unknown;
    // Aliases are capped so a few lines of anchors cannot expand into gigabytes.
    return parseYaml(text, { uniqueKeys: true, maxAliasCount: 100, prettyErrors: true }) as unknown;
  } catch (err) {
    throw new PlaybookParseError(
      fmt,
      // The first line says what and where; the parser's code excerpt after it does not fit one line.
      err instanceof Error ? (err.message.split('\n')[0] ?? '').replace(/:\s*$/, '') : String(err),
      {
        cause: err,
      },
    );
  }
}

/**
 * Decodes and validates playbook text in one step.
 * Throws `PlaybookParseError` for bad syntax and `PlaybookValidationError` for a bad definition.
 */
export function loadPlaybook(text: string, format?: 'yaml' | 'json'): PlaybookDefinition {
  return assertPlaybook(parsePlaybook(text, format));
}
