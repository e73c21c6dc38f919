import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonValueProblem } from '../../runtime/value-checks.ts';

/** A JSON value with `bad` put at one place in it, and that place's path as `jsonValueProblem` names it. */
function withBadLeaf(value: unknown, bad: unknown, choice: number): { value: unknown; path: string } {
  let path = '$';
  let node: unknown = value;
  let parent: { set(v: unknown): void } | undefined;
  // Descend along `choice` while there are containers with something in them.
  for (let step = 0; ; step++) {
    const pick = Math.floor(choice / 7 ** step);
    if (Array.isArray(node) && node.length > 0 && pick % 3 !== 0) {
      const i = pick % node.length;
      const arr = node;
      parent = { set: (v) => (arr[i] = v) };
      path += `[${i}]`;
      node = arr[i];
    } else if (node !== null && typeof node === 'object' && Object.keys(node).length > 0 && pick % 3 !== 0) {
      const keys = Object.keys(node);
      const key = keys[pick % keys.length] as string;
      const obj = node as Record<string, unknown>;
      // defineProperty: a `__proto__` key is an own property here, as JSON.parse makes it.
      parent = { set: (v) => Object.defineProperty(obj, key, { value: v, enumerable: true }) };
      path += `.${key.slice(0, 64)}`;
      node = obj[key];
    } else break;
  }
  if (parent === undefined) return { value: bad, path: '$' };
  parent.set(bad);
  return { value, path };
}

const BAD: Array<[string, () => unknown]> = [
  ['bytes', () => new Uint8Array(2)],
  ['NaN', () => Number.NaN],
  ['Infinity', () => Number.POSITIVE_INFINITY],
  ['a Date', () => new Date(0)],
  ['a Map', () => new Map()],
  ['a bigint', () => 5n],
  ['a function', () => () => 1],
];

describe('jsonValueProblem', () => {
  it('passes any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(jsonValueProblem(value)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('names the one place in a JSON value that holds what JSON cannot say', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 4 }),
        fc.nat(),
        fc.constantFrom(...BAD),
        (json, choice, [, make]) => {
          const { value, path } = withBadLeaf(structuredClone(json), make(), choice);
          const problem = jsonValueProblem(value);
          expect(problem?.path).toBe(path);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('skips undefined in a map (JSON.stringify drops it) and refuses it in a list', () => {
    expect(jsonValueProblem({ a: undefined, b: [1] })).toBeUndefined();
    expect(jsonValueProblem({ a: [1, undefined] })?.path).toBe('$.a[1]');
    expect(jsonValueProblem(Object.assign(Object.create(null), { x: 1 }))).toBeUndefined();
    expect(jsonValueProblem({ a: new (class Point {})() })?.expected).toMatch(/not a Point/);
  });
});
