// Values of command-line arguments that several command files take: whole numbers, durations, JSON, and files the user names.
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { AnxError } from '../errors.ts';
import { jsonValueProblem } from '../value-checks.ts';

const NO_MAX = Number.MAX_SAFE_INTEGER;

function integerRange(min: number, max: number, unit: string | undefined): string {
  const range = max === NO_MAX ? `an integer of ${min} or more` : `an integer from ${min} to ${max}`;
  return unit === undefined ? range : `${range} (${unit})`;
}

/**
 * A whole number in decimal digits (an optional `-`, surrounding blanks ignored) from `min` to `max`.
 * `Number(value)` alone is not enough: it reads `''` and `' '` as 0, and takes `1e3`, `0x10` and `1.0`.
 *
 * @example
 * ```ts
 * parseInteger('--limit', '20', 1, 10_000); // 20
 * parseInteger('--limit', '', 1, 10_000); // throws ANX_ARGUMENT_INVALID: --limit expected an integer from 1 to 10000, got ""
 * ```
 */
export function parseInteger(flag: string, value: string, min = 0, max = NO_MAX, unit?: string): number {
  const text = value.trim();
  const n = /^-?\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `${flag} expected ${integerRange(min, max, unit)}, got ${JSON.stringify(value)}`,
    );
  return n;
}

/** `parseInteger` as a commander option parser: `.option('--limit <n>', '…', integerOption('--limit', 1))`. */
export function integerOption(flag: string, min = 0, max = NO_MAX, unit?: string): (value: string) => number {
  return (value: string) => parseInteger(flag, value, min, max, unit);
}

/** A TCP port option: 0 to 65535 (0 lets the system pick one). */
export function portOption(flag: string): (value: string) => number {
  return integerOption(flag, 0, 65535);
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+)(ms|s|m|h|d)?$/;

/** `90s`, `30m`, `1h`, `7d` or plain milliseconds. */
export function parseDurationMs(flag: string, value: string): number {
  const m = DURATION.exec(value.trim());
  if (m === null)
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `${flag} expected a duration like 90s, 30m, 1h or 7d, got "${value}"`,
    );
  return Number(m[1]) * (UNITS[m[2] ?? 'ms'] as number);
}

/** `30d`, `12h`, `15m`, `45s` from now (a unit is required), or an ISO date: ms since the epoch. */
export function parseExpiry(value: string, now = Date.now()): number {
  if (/^\d+(ms|s|m|h|d)$/.test(value)) return now + parseDurationMs('--expires', value);
  const at = Date.parse(value);
  if (Number.isNaN(at))
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `--expires expected a duration like 30d, 12h, 15m or an ISO date, got "${value}"`,
      {
        hint: 'for example --expires 90d or --expires 2027-01-01T00:00:00Z',
      },
    );
  return at;
}

/**
 * JSON given on the command line, refused when it is not JSON or holds a number JSON text can spell
 * but no JSON value can hold (`1e999` parses as Infinity, which would be sent as `null`).
 */
export function parseJsonArg(flag: string, text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AnxError('ANX_ARGUMENT_INVALID', `${flag} expected JSON: ${(err as Error).message}`);
  }
  // JSON.parse yields plain data only: the one problem left to find is a number out of range.
  const problem = jsonValueProblem(value);
  if (problem !== undefined)
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `${flag} expected JSON with finite numbers (at most about 1.8e308 in size), got a number out of range at ${problem.path}`,
      { hint: 'a number that large has no JSON value (it would be sent as null): give it as a string' },
    );
  return value;
}

/** Why the system could not read a file: `no such file or directory (ENOENT)`. */
function osReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EISDIR') return 'it is a directory (EISDIR)';
  const m = /^[A-Z0-9]+: ([^,]+)/.exec(e.message ?? '');
  if (e.code !== undefined && m !== null) return `${m[1]} (${e.code})`;
  return e.message ?? String(err);
}

function unreadable(what: string, file: string, err: unknown, hint?: string): AnxError {
  return new AnxError(
    'ANX_ARGUMENT_INVALID',
    `${what} expected a file to read, got ${JSON.stringify(file)}: ${osReason(err)}`,
    {
      hint:
        hint ??
        'check the path (a relative one starts from the current directory) and that you may read the file',
    },
  );
}

/**
 * The bytes of a file the user named (`what` names the option or argument: `--file`, `FILE`). A file
 * that cannot be read is the user's error: ANX_ARGUMENT_INVALID (exit 2) with the system's reason.
 */
export function readFileArg(what: string, file: string, hint?: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw unreadable(what, file, err, hint);
  }
}

/** `readFileArg` as UTF-8 text. */
export function readTextArg(what: string, file: string, hint?: string): string {
  return readFileArg(what, file, hint).toString('utf8');
}

/**
 * Checks that a file the user named, which another program reads later (a TLS certificate for
 * nats-server), is a file this user can read now, rather than failing later and elsewhere.
 */
export function checkReadableFile(what: string, file: string, hint?: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    if (fstatSync(fd).isDirectory())
      throw Object.assign(new Error('EISDIR: illegal operation on a directory'), { code: 'EISDIR' });
  } catch (err) {
    throw unreadable(what, file, err, hint);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
