// Base of every typed error the runtime raises: a stable string `code`, a readable message and a chained cause.

/**
 * Every error a caller may handle derives from `AnxError` and carries a stable `code`
 * (for example `ANX_DID_INVALID`). Messages say what was expected and what came.
 */
export class AnxError extends Error {
  readonly code: string;
  /** Optional hint: what the user or caller can do about it. */
  readonly hint: string | undefined;

  constructor(code: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options?.hint;
  }

  toJSON(): { code: string; message: string; hint?: string } {
    return this.hint === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, hint: this.hint };
  }
}

/**
 * An id given for something new (an Enclave, task, discussion, run) is taken: nothing is wrong with the
 * id itself, it conflicts with what exists (HTTP 409, CLI exit 5).
 */
export class IdTakenError extends AnxError {
  constructor(message: string) {
    super('ANX_ID_CONFLICT', message, {
      hint: 'that id is taken: give another one, or leave it out to have one generated',
    });
  }
}

/** True when `err` is an `AnxError` with the given code. */
export function isAnxError(err: unknown, code?: string): err is AnxError {
  return err instanceof AnxError && (code === undefined || err.code === code);
}

/** Describes a value for error messages without dumping large or binary payloads. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'string')
    return JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (typeof value === 'object') {
    // Small values in full, larger ones by their shape: a message never echoes a large input back.
    const shape = Array.isArray(value)
      ? `an array of ${value.length}`
      : `an object of ${Object.keys(value).length} keys`;
    if ((Array.isArray(value) ? value.length : Object.keys(value).length) > 16) return shape;
    try {
      const json = JSON.stringify(value);
      return json !== undefined && json.length <= 96 ? json : shape;
    } catch {
      return shape;
    }
  }
  return `a ${typeof value}`;
}
