// Secrets and tokens on the command line: given as text, `@FILE` or `-` (stdin), so they can stay out of the process list.
import { readFileSync } from 'node:fs';
import { AnxError } from '../errors.ts';

/**
 * The value of an argument that may be secret: `-` reads stdin, `@FILE` reads the file, anything else
 * is the value itself. Surrounding whitespace (a file's last newline) is dropped. `what` names it in
 * errors ("the token", "--secret").
 */
export function secretArg(value: string, what: string): string {
  let text = value;
  try {
    if (value === '-') text = readFileSync(0, 'utf8');
    else if (value.startsWith('@')) text = readFileSync(value.slice(1), 'utf8');
  } catch (err) {
    throw new AnxError(
      'ANX_ARGUMENT_INVALID',
      `cannot read ${what} from ${value}: ${(err as Error).message}`,
      {
        hint: `pass ${what} as text, @FILE or - for stdin`,
      },
    );
  }
  const trimmed = text.trim();
  if (trimmed === '')
    throw new AnxError('ANX_ARGUMENT_INVALID', `${what} from ${value === '-' ? 'stdin' : value} is empty`, {
      hint: `pass ${what} as text, @FILE or - for stdin`,
    });
  return trimmed;
}
