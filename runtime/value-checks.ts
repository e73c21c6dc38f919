// Checks on values that come from outside (API bodies, message bodies) before anything stores, hashes or signs them.

/**
 * Deepest nesting of arrays and maps a body may have. Encoders recurse: a value nested a few thousand
 * levels deep makes msgpack encoding overflow the stack in the middle of a group commit, which would
 * take every other write of that commit down with it.
 */
export const MAX_NESTING = 64;

// A UTF-16 surrogate without its pair: it cannot be encoded as UTF-8, so what is stored (U+FFFD)
// would differ from what was hashed or signed.
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface ValueProblem {
  /** Where: `$` for the value itself, then `.key` and `[index]`. */
  path: string;
  /** What is wrong, as "expected …, got …" wants it: what was expected. */
  expected: string;
}

/**
 * The first thing in a decoded value that the runtime must not take: nesting deeper than `maxDepth`,
 * and with `text` set (values that may be hashed or signed as text) a string or key holding a lone
 * surrogate, or a number that is not finite. Undefined when there is none. Walks without recursion,
 * so the check itself cannot overflow; the path is worked out only when there is a problem to name.
 *
 * @example
 * ```ts
 * const problem = valueProblem(JSON.parse(text), { text: true });
 * if (problem) throw new RequestError('ANX_REQUEST_INVALID', `${problem.path}: expected ${problem.expected}`);
 * ```
 */
export function valueProblem(
  value: unknown,
  options: { maxDepth?: number; text?: boolean } = {},
): ValueProblem | undefined {
  // Most values pass: the first walk keeps no paths; a second one, on a problem, names where it is.
  return walk(value, options, false) === undefined ? undefined : walk(value, options, true);
}

function walk(
  value: unknown,
  options: { maxDepth?: number; text?: boolean },
  named: boolean,
): ValueProblem | undefined {
  const maxDepth = options.maxDepth ?? MAX_NESTING;
  const text = options.text === true;
  const values: unknown[] = [value];
  const depths: number[] = [0];
  const paths: string[] = named ? ['$'] : [];
  while (values.length > 0) {
    const v = values.pop();
    const at = depths.pop() as number;
    const path = named ? (paths.pop() as string) : '';
    if (typeof v === 'string') {
      if (text && LONE_SURROGATE.test(v)) return { path, expected: 'text without lone UTF-16 surrogates' };
      continue;
    }
    if (typeof v === 'number') {
      if (text && !Number.isFinite(v)) return { path, expected: 'a finite number' };
      continue;
    }
    if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) continue;
    if (at >= maxDepth) return { path, expected: `at most ${maxDepth} levels of nested arrays and maps` };
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        values.push(v[i]);
        depths.push(at + 1);
        if (named) paths.push(`${path}[${i}]`);
      }
      continue;
    }
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i] as [unknown, unknown];
      if (text && typeof key === 'string' && LONE_SURROGATE.test(key))
        return { path: `${path}.${key.slice(0, 64)}`, expected: 'keys without lone UTF-16 surrogates' };
      values.push(child);
      depths.push(at + 1);
      if (named) paths.push(`${path}.${String(key).slice(0, 64)}`);
    }
  }
  return undefined;
}

/**
 * The size of `value` encoded as msgpack the way envelopes encode bodies (maps as maps, floats as
 * float64, `undefined` as nil), in bytes, without encoding it. Values msgpack has no type for
 * (a Date, say) count one byte. Walks without recursion.
 *
 * @example
 * ```ts
 * encodedSize({ text: 'hi' }); // 9: map header, "text", "hi"
 * ```
 */
export function encodedSize(value: unknown): number {
  let bytes = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      const n = v.length < 32 && isAscii(v) ? v.length : Buffer.byteLength(v, 'utf8');
      bytes += n + (n < 32 ? 1 : n < 256 ? 2 : n < 65_536 ? 3 : 5);
    } else if (typeof v === 'number') bytes += numberSize(v);
    else if (ArrayBuffer.isView(v)) {
      const n = v.byteLength;
      bytes += n + (n < 256 ? 2 : n < 65_536 ? 3 : 5);
    } else if (Array.isArray(v)) {
      bytes += containerHead(v.length);
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
    } else if (typeof v === 'object' && v !== null && (isPlainObject(v) || v instanceof Map)) {
      const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
      bytes += containerHead(entries.length);
      for (const [key, child] of entries) stack.push(key, child);
    } else bytes += 1; // nil, booleans, and what has no msgpack type of its own
  }
  return bytes;
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function containerHead(count: number): number {
  return count < 16 ? 1 : count < 65_536 ? 3 : 5;
}

function numberSize(n: number): number {
  if (!Number.isInteger(n)) return 9;
  if (n >= -32 && n < 128) return 1;
  if (n >= -128 && n < 256) return 2;
  if (n >= -32_768 && n < 65_536) return 3;
  if (n >= -2_147_483_648 && n < 4_294_967_296) return 5;
  return 9;
}

const BASE64_CHARS = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * True for standard or URL-safe base64, padded or not (a length that leaves one character over is
 * not). `Buffer.from(text, 'base64')` skips what is not base64, so garbage would decode to stray bytes.
 */
export function isBase64(text: string): boolean {
  return BASE64_CHARS.test(text) && text.replace(/=+$/, '').length % 4 !== 1;
}

/**
 * Where `value` is not plain JSON data (text, finite numbers, booleans, null, arrays and plain objects),
 * or undefined when it is: what survives the local API unchanged. Bytes, Maps, Dates, big integers and
 * the like would arrive changed (or not at all) at a reader on the other side of the API.
 *
 * @example
 * ```ts
 * jsonValueProblem({ a: new Uint8Array(2) }); // { path: '$.a', expected: 'JSON data ...' }
 * ```
 */
export function jsonValueProblem(value: unknown): (ValueProblem & { value: unknown }) | undefined {
  // Most values pass: the first walk builds no paths (a body of a thousand messages has thousands of
  // nodes); a second one, on a problem, names where it is.
  return jsonWalk(value, false) === undefined ? undefined : jsonWalk(value, true);
}

function jsonWalk(value: unknown, named: boolean): (ValueProblem & { value: unknown }) | undefined {
  const values: unknown[] = [value];
  const paths: string[] = named ? ['$'] : [];
  while (values.length > 0) {
    const v = values.pop();
    const path = named ? (paths.pop() as string) : '';
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { path, expected: 'a finite number', value: v };
      continue;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        values.push(v[i]);
        if (named) paths.push(`${path}[${i}]`);
      }
      continue;
    }
    if (typeof v === 'object' && isPlainObject(v)) {
      for (const key in v) {
        if (!Object.hasOwn(v, key)) continue;
        const item = (v as Record<string, unknown>)[key];
        if (item === undefined) continue;
        values.push(item);
        if (named) paths.push(`${path}.${key.slice(0, 64)}`);
      }
      continue;
    }
    return {
      path,
      value: v,
      expected: `JSON data (text, numbers, booleans, null, lists, plain objects), not ${ArrayBuffer.isView(v) ? 'bytes (send them as base64 text)' : typeof v === 'object' ? `a ${(v as object).constructor?.name ?? 'non-plain object'}` : `a ${typeof v}`}`,
    };
  }
  return undefined;
}
