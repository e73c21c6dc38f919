// Playbook validation: every kind of mistake is reported with its JSON path; random mutations never crash it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { compilePlaybook } from '../../machines/playbook/compile.ts';
import { loadPlaybook, parsePlaybook } from '../../machines/playbook/parse.ts';
import { PLAYBOOK_TEMPLATES, TEMPLATE_NAMES } from '../../machines/playbook/templates.ts';
import {
  assertPlaybook,
  PlaybookValidationError,
  parseDuration,
  validatePlaybook,
} from '../../machines/playbook/validate.ts';
import { isAnxError } from '../../runtime/errors.ts';

const stage = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  role: 'dev',
  brief: `do ${id}`,
  output: { kind: 'markdown', key: `out/${id}.md` },
  ...extra,
});
const base = (stages: unknown[], extra: Record<string, unknown> = {}) => ({
  name: 'p',
  version: '1',
  stages,
  ...extra,
});

function issuesOf(raw: unknown) {
  const r = validatePlaybook(raw);
  if (r.ok) throw new Error('expected the playbook to be rejected');
  return r.issues;
}

describe('validatePlaybook', () => {
  it('fills in defaults and normalises durations', () => {
    const def = assertPlaybook(
      base(
        [
          stage('a', { timeout: '5m', backoff: { initial: '250ms', factor: 3, max: '10s' } }),
          stage('b', { inputs: ['a'] }),
        ],
        {
          defaults: { timeout: 1000, max_retries: 4 },
        },
      ),
    );
    expect(def.context_budget_bytes).toBe(8192);
    expect(def.stages[0]).toMatchObject({
      timeout_ms: 300_000,
      max_retries: 4,
      backoff: { initial_ms: 250, factor: 3, max_ms: 10_000 },
    });
    expect(def.stages[1]).toMatchObject({ timeout_ms: 1000, inputs: ['a'] });
  });

  it('reports an unknown rollback target with its path', () => {
    const issues = issuesOf(
      base([stage('a'), stage('b'), stage('c'), stage('review', { review: { on_reject: 'nope' } })]),
    );
    expect(issues).toEqual([
      {
        path: 'stages[3].review.on_reject',
        expected: 'the id of an earlier stage',
        got: 'unknown stage "nope"',
      },
    ]);
  });

  it('refuses a rollback target that is not an earlier stage', () => {
    const later = issuesOf(base([stage('review', { review: { on_reject: 'b' } }), stage('b')]));
    expect(later[0]?.path).toBe('stages[0].review.on_reject');
    expect(later[0]?.expected).toMatch(/earlier stage/);
    const self = issuesOf(base([stage('a'), stage('review', { review: { on_reject: 'review' } })]));
    expect(self[0]?.expected).toMatch(/cycle/);
  });

  it('refuses duplicate stage ids and duplicate output keys', () => {
    const issues = issuesOf(base([stage('a'), stage('a', { output: { kind: 'md', key: 'out/a.md' } })]));
    expect(issues.map((i) => i.path)).toEqual(['stages[1].id', 'stages[1].output.key']);
    expect(issues[0]?.expected).toMatch(/unique stage id \(first used at stages\[0\]\)/);
  });

  it('refuses inputs that read the stage itself or a later stage as cycles', () => {
    const issues = issuesOf(base([stage('a', { inputs: ['b'] }), stage('b', { inputs: ['b'] })]));
    expect(issues.map((i) => i.path)).toEqual(['stages[0].inputs[0]', 'stages[1].inputs[0]']);
    expect(issues.every((i) => i.expected.includes('cycle'))).toBe(true);
  });

  it('refuses negative or malformed timeouts, missing roles and unknown fields, saying what came', () => {
    const issues = issuesOf(
      base([
        { id: 'a', brief: 'x', output: { kind: 'md', key: 'a.md' }, timeout: -5, colour: 'red' },
        stage('b', { timeout: '5 parsecs', max_retries: 1.5 }),
      ]),
    );
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i]));
    expect(byPath['stages[0].colour']?.expected).toMatch(/no such field/);
    expect(byPath['stages[0].role']).toMatchObject({ got: 'undefined' });
    expect(byPath['stages[0].timeout']).toMatchObject({ got: '-5' });
    expect(byPath['stages[1].timeout']).toMatchObject({ got: '"5 parsecs"' });
    expect(byPath['stages[1].max_retries']).toMatchObject({
      expected: 'an integer from 0 to 100',
      got: '1.5',
    });
  });

  it('refuses output keys that escape the vault', () => {
    for (const key of ['../x', '/abs', '.git/config', 'a//b', 'a\\b']) {
      const issues = issuesOf(base([stage('a', { output: { kind: 'md', key } })]));
      expect(issues[0]?.path).toBe('stages[0].output.key');
    }
  });

  it('checks vote and fan-out forms', () => {
    const issues = issuesOf(
      base([
        stage('v', { vote: { voters: 3, quorum: 4 } }),
        stage('f', { fanout: { count: 0 } }),
        stage('both', { fanout: { count: 2 }, vote: { voters: 2, quorum: 1 } }),
      ]),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'stages[0].vote.quorum',
      'stages[1].fanout.count',
      'stages[2]',
    ]);
  });

  it('refuses things that are not playbooks at all', () => {
    for (const raw of [null, 42, 'text', [], { name: 'p' }, base([])])
      expect(validatePlaybook(raw).ok).toBe(false);
    expect(issuesOf(null)[0]?.path).toBe('$');
  });

  it('throws a typed error listing every issue', () => {
    let err: unknown;
    try {
      assertPlaybook(base([stage('a', { review: { on_reject: 'zz' } }), stage('a')]));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlaybookValidationError);
    expect(isAnxError(err, 'ANX_PLAYBOOK_INVALID')).toBe(true);
    expect((err as PlaybookValidationError).issues.map((i) => i.path)).toEqual([
      'stages[1].id',
      'stages[0].review.on_reject',
      'stages[1].output.key',
    ]);
    expect((err as Error).message).toMatch(/stages\[0\]\.review\.on_reject/);
  });

  it('parses durations', () => {
    expect([
      parseDuration('30s'),
      parseDuration('5m'),
      parseDuration('1.5h'),
      parseDuration(250),
      parseDuration('2d'),
    ]).toEqual([30_000, 300_000, 5_400_000, 250, 172_800_000]);
    expect([
      parseDuration('-1s'),
      parseDuration('5 parsecs'),
      parseDuration(-1),
      parseDuration(Number.NaN),
    ]).toEqual([undefined, undefined, undefined, undefined]);
  });
});

describe('parsePlaybook', () => {
  it('reads the same playbook from YAML and from JSON', () => {
    const raw = PLAYBOOK_TEMPLATES['dev-team'];
    const fromYaml = loadPlaybook(stringify(raw));
    const fromJson = loadPlaybook(JSON.stringify(raw), 'json');
    expect(fromYaml).toEqual(fromJson);
    expect(fromYaml.stages.map((s) => s.id)).toEqual([
      'requirements',
      'design',
      'implement',
      'test',
      'review',
    ]);
  });

  it('answers bad syntax, duplicate keys and alias bombs with a typed parse error', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x]',
      ...Array.from({ length: 12 }, (_, i) => {
        const prev = i === 0 ? 'a' : `l${i - 1}`;
        return `l${i}: &l${i} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`;
      }),
    ].join('\n');
    for (const [text, format] of [
      ['name: [unclosed', 'yaml'],
      ['name: a\nname: b\n', 'yaml'],
      ['{"name": ', 'json'],
      [bomb, 'yaml'],
    ] as const) {
      let err: unknown;
      try {
        parsePlaybook(text, format);
      } catch (e) {
        err = e;
      }
      expect(isAnxError(err, 'ANX_PLAYBOOK_PARSE'), `${format}: ${text.slice(0, 30)}`).toBe(true);
    }
  });
});

// ---- properties ----

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every location in a JSON value, as a list of keys/indexes. */
function locations(v: Json, at: Array<string | number> = []): Array<Array<string | number>> {
  const out = [at];
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) out.push(...locations(x, [...at, i]));
  } else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) out.push(...locations(x, [...at, k]));
  return out;
}

function parentOf(
  root: Json,
  at: Array<string | number>,
): { parent: Json; last: string | number } | undefined {
  if (at.length === 0) return undefined;
  let cur: Json = root;
  for (const k of at.slice(0, -1)) cur = (cur as Record<string | number, Json>)[k] as Json;
  return { parent: cur, last: at[at.length - 1] as string | number };
}

type Mutation =
  | { op: 'delete'; pick: number }
  | { op: 'replace'; pick: number; value: unknown }
  | { op: 'add'; pick: number; key: string; value: unknown }
  | { op: 'dup'; pick: number }
  | { op: 'swap'; pick: number; other: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), pick: fc.nat() }),
  fc.record({
    op: fc.constant('replace' as const),
    pick: fc.nat(),
    value: fc.oneof(
      fc.anything(),
      fc.constantFrom(
        -1,
        0,
        1.5,
        '',
        '..',
        '/x',
        '30s',
        '-5m',
        'implement',
        'review',
        'requirements',
        1e12,
        null,
        [],
        {},
      ),
    ),
  }),
  fc.record({
    op: fc.constant('add' as const),
    pick: fc.nat(),
    key: fc.string({ maxLength: 8 }),
    value: fc.anything(),
  }),
  fc.record({ op: fc.constant('dup' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('swap' as const), pick: fc.nat(), other: fc.nat() }),
);

function mutate(root: Json, m: Mutation): Json {
  const locs = locations(root);
  const at = locs[m.pick % locs.length] ?? [];
  const p = parentOf(root, at);
  const target = p ? ((p.parent as Record<string | number, Json>)[p.last] as Json) : root;
  switch (m.op) {
    case 'delete':
      if (!p) return null;
      if (Array.isArray(p.parent)) p.parent.splice(Number(p.last), 1);
      else delete (p.parent as Record<string, Json>)[p.last];
      return root;
    case 'replace':
      if (!p) return m.value as Json;
      (p.parent as Record<string | number, Json>)[p.last] = m.value as Json;
      return root;
    case 'add':
      if (target !== null && typeof target === 'object' && !Array.isArray(target))
        target[m.key] = m.value as Json;
      return root;
    case 'dup':
      if (Array.isArray(target) && target.length > 0)
        target.push(structuredClone(target[m.pick % target.length] as Json));
      return root;
    case 'swap':
      if (Array.isArray(target) && target.length > 1) {
        const i = m.pick % target.length;
        const j = m.other % target.length;
        [target[i], target[j]] = [target[j] as Json, target[i] as Json];
      }
      return root;
  }
}

/** Splits an issue path (`a.b[2]["odd key"]`) into its segments; undefined when it does not follow the grammar. */
function segments(path: string): string[] | undefined {
  if (path === '$') return [];
  const out: string[] = [];
  const re = /^(?:\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\])/;
  let rest = path.startsWith('$[') ? path.slice(1) : path;
  while (rest.length > 0) {
    const m = re.exec(rest);
    if (!m) return undefined;
    out.push(m[1] ?? m[2] ?? (JSON.parse(m[3] ?? '""') as string));
    rest = rest.slice(m[0].length);
  }
  return out;
}

/** True when every segment of an issue path but the last names something present in `root`. */
function pathReaches(root: unknown, path: string): boolean {
  const segs = segments(path);
  if (!segs) return false;
  let cur: unknown = root;
  for (const s of segs.slice(0, -1)) {
    if (cur === null || typeof cur !== 'object') return false;
    cur = (cur as Record<string, unknown>)[s];
  }
  return segs.length === 0 || (cur !== null && typeof cur === 'object');
}

describe('validatePlaybook properties', () => {
  it('turns every mutation of a valid playbook into a valid one or issues with paths, never a crash', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...TEMPLATE_NAMES),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        (name, muts) => {
          let raw = structuredClone(PLAYBOOK_TEMPLATES[name]) as Json;
          for (const m of muts) raw = mutate(raw, m);
          const r = validatePlaybook(raw);
          if (r.ok) {
            // Anything validation lets through must compile.
            compilePlaybook(r.definition);
            return;
          }
          expect(r.issues.length).toBeGreaterThan(0);
          for (const issue of r.issues) {
            expect(segments(issue.path), issue.path).toBeDefined();
            expect(pathReaches(raw, issue.path), issue.path).toBe(true);
            expect(issue.expected.length).toBeGreaterThan(0);
            expect(typeof issue.got).toBe('string');
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('accepts random well-formed linear playbooks and compiles them', () => {
    const stageArb = fc.record({
      role: fc.constantFrom('dev', 'qa', 'pm'),
      timeout: fc.oneof(fc.integer({ min: 1, max: 10_000_000 }), fc.constantFrom('30s', '5m', '2h')),
      max_retries: fc.integer({ min: 0, max: 5 }),
      review: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(stageArb, { minLength: 1, maxLength: 12 }), (specs) => {
        const stages = specs.map((s, i) => ({
          id: `s${i}`,
          role: s.role,
          brief: `stage ${i}`,
          inputs: i > 0 ? [`s${i - 1}`] : [],
          output: { kind: 'markdown', key: `out/s${i}.md` },
          timeout: s.timeout,
          max_retries: s.max_retries,
          ...(s.review && i > 0 ? { review: { on_reject: `s${i - 1}` } } : {}),
        }));
        const r = validatePlaybook(base(stages));
        expect(r.ok).toBe(true);
        if (r.ok) compilePlaybook(r.definition);
      }),
      { numRuns: 200 },
    );
  });
});
