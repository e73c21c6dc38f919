// Validation of a raw (parsed YAML/JSON) playbook into a normalised PlaybookDefinition, with path-addressed issues.
import { AnxError, describeValue } from '../../runtime/errors.ts';
import {
  type BackoffSpec,
  PLAYBOOK_DEFAULTS,
  PLAYBOOK_LIMITS,
  type PlaybookDefinition,
  type StageDefinition,
} from './definition.ts';

/** One problem found in a playbook: where (a JSON path such as `stages[3].review.on_reject`), what was expected, what came. */
export interface PlaybookIssue {
  path: string;
  expected: string;
  got: string;
}

/** Raised when a playbook definition does not validate; `issues` lists every problem found. */
export class PlaybookValidationError extends AnxError {
  readonly issues: readonly PlaybookIssue[];

  constructor(issues: readonly PlaybookIssue[], options?: { cause?: unknown }) {
    const head = issues
      .slice(0, 3)
      .map((i) => `${i.path}: expected ${i.expected}, got ${i.got}`)
      .join('; ');
    const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : '';
    super('ANX_PLAYBOOK_INVALID', `invalid playbook: ${head}${more}`, {
      cause: options?.cause,
      hint: 'fix the listed fields of the playbook definition and load it again',
    });
    this.issues = issues;
  }

  /** The JSON form names every issue, not only the first three the message has room for. */
  override toJSON(): ReturnType<AnxError['toJSON']> & { issues: readonly PlaybookIssue[] } {
    return { ...super.toJSON(), issues: this.issues };
  }
}

/** Result of {@link validatePlaybook}: the normalised definition, or every issue found. */
export type PlaybookValidation =
  | { ok: true; definition: PlaybookDefinition }
  | { ok: false; issues: PlaybookIssue[] };

const STAGE_ID = /^[a-z][a-z0-9_-]{0,63}$/;
const ROLE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const KIND = /^[A-Za-z0-9][A-Za-z0-9_.+/-]{0,63}$/;
// Same character set as the vault's keys: no leading dot in a segment rules out `.`, `..` and `.git`.
const KEY_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

const TOP_FIELDS = [
  'name',
  'version',
  'description',
  'objective',
  'context_budget_bytes',
  'takeover_timeout',
  'defaults',
  'stages',
];
const DEFAULT_FIELDS = ['timeout', 'max_retries', 'backoff'];
const STAGE_FIELDS = [
  'id',
  'role',
  'brief',
  'inputs',
  'output',
  'timeout',
  'max_retries',
  'backoff',
  'review',
  'fanout',
  'vote',
];

/** True when `key` is a well-formed artifact key: `/`-separated segments of `[A-Za-z0-9._-]`, none starting with a dot. */
export function isArtifactKey(key: string): boolean {
  if (key.length === 0 || key.length > 256) return false;
  const segments = key.split('/');
  return segments.length <= 16 && segments.every((s) => KEY_SEGMENT.test(s));
}

/**
 * Parses a duration: a non-negative number of milliseconds or a string such as `"30s"`, `"5m"`, `"250ms"`.
 * Returns `undefined` when the value is not a duration.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const m = DURATION.exec(value.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? Number.NaN);
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Appends a field to a JSON path; names that are not plain identifiers are quoted: `stages[0]["a b"]`. */
function join(path: string, field: string): string {
  if (!IDENT.test(field)) return `${path === '' ? '$' : path}[${JSON.stringify(field)}]`;
  return path === '' ? field : `${path}.${field}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

class Collector {
  readonly issues: PlaybookIssue[] = [];
  add(path: string, expected: string, got: unknown): void {
    this.issues.push({ path, expected, got: describeValue(got) });
  }
  /** Adds an issue whose `got` is already a description rather than a value. */
  note(path: string, expected: string, got: string): void {
    this.issues.push({ path, expected, got });
  }
  unknownFields(obj: Record<string, unknown>, allowed: readonly string[], path: string): void {
    for (const k of Object.keys(obj)) {
      if (!allowed.includes(k))
        this.note(join(path, k), `no such field (allowed: ${allowed.join(', ')})`, 'a field');
    }
  }
  string(
    obj: Record<string, unknown>,
    field: string,
    path: string,
    pattern?: RegExp,
    what?: string,
  ): string | undefined {
    const v = obj[field];
    if (typeof v !== 'string' || v.length === 0) {
      this.add(join(path, field), what ?? 'a non-empty string', v);
      return undefined;
    }
    if (pattern && !pattern.test(v)) {
      this.add(join(path, field), what ?? `a string matching ${pattern}`, v);
      return undefined;
    }
    return v;
  }
  int(v: unknown, path: string, min: number, max: number): number | undefined {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.add(path, `an integer from ${min} to ${max}`, v);
      return undefined;
    }
    return v;
  }
  duration(v: unknown, path: string, min: number, max: number): number | undefined {
    const ms = parseDuration(v);
    if (ms === undefined || ms < min || ms > max) {
      this.add(path, `a duration from ${min} to ${max} ms (a number of ms or a string like "30s", "5m")`, v);
      return undefined;
    }
    return ms;
  }
}

function readBackoff(c: Collector, v: unknown, path: string, fallback: BackoffSpec): BackoffSpec {
  if (v === undefined) return fallback;
  if (!isRecord(v)) {
    c.add(path, 'an object { initial, factor, max }', v);
    return fallback;
  }
  c.unknownFields(v, ['initial', 'factor', 'max'], path);
  const initial =
    v['initial'] === undefined
      ? fallback.initial_ms
      : c.duration(v['initial'], `${path}.initial`, 0, PLAYBOOK_LIMITS.max_timeout_ms);
  const max =
    v['max'] === undefined
      ? fallback.max_ms
      : c.duration(v['max'], `${path}.max`, 0, PLAYBOOK_LIMITS.max_timeout_ms);
  let factor = fallback.factor;
  if (v['factor'] !== undefined) {
    const f = v['factor'];
    if (typeof f !== 'number' || !Number.isFinite(f) || f < 1 || f > 10)
      c.add(`${path}.factor`, 'a number from 1 to 10', f);
    else factor = f;
  }
  if (initial === undefined || max === undefined) return fallback;
  if (max < initial) {
    c.note(`${path}.max`, `a duration of at least initial (${initial} ms)`, `${max} ms`);
    return fallback;
  }
  return { initial_ms: initial, factor, max_ms: max };
}

interface Defaults {
  timeout_ms: number;
  max_retries: number;
  backoff: BackoffSpec;
}

function readDefaults(c: Collector, v: unknown): Defaults {
  const d: Defaults = {
    timeout_ms: PLAYBOOK_DEFAULTS.timeout_ms,
    max_retries: PLAYBOOK_DEFAULTS.max_retries,
    backoff: { ...PLAYBOOK_DEFAULTS.backoff },
  };
  if (v === undefined) return d;
  if (!isRecord(v)) {
    c.add('defaults', 'an object { timeout, max_retries, backoff }', v);
    return d;
  }
  c.unknownFields(v, DEFAULT_FIELDS, 'defaults');
  if (v['timeout'] !== undefined) {
    d.timeout_ms =
      c.duration(v['timeout'], 'defaults.timeout', 1, PLAYBOOK_LIMITS.max_timeout_ms) ?? d.timeout_ms;
  }
  if (v['max_retries'] !== undefined) {
    d.max_retries =
      c.int(v['max_retries'], 'defaults.max_retries', 0, PLAYBOOK_LIMITS.max_retries) ?? d.max_retries;
  }
  d.backoff = readBackoff(c, v['backoff'], 'defaults.backoff', d.backoff);
  return d;
}

function readStage(
  c: Collector,
  raw: unknown,
  path: string,
  defaults: Defaults,
): StageDefinition | undefined {
  if (!isRecord(raw)) {
    c.add(path, 'a stage object', raw);
    return undefined;
  }
  c.unknownFields(raw, STAGE_FIELDS, path);
  const id = c.string(raw, 'id', path, STAGE_ID, 'a stage id: lowercase letter then [a-z0-9_-], at most 64');
  const role = c.string(raw, 'role', path, ROLE, 'a role name of [A-Za-z0-9_.-], at most 64');
  let brief = '';
  if (raw['brief'] !== undefined) {
    if (typeof raw['brief'] !== 'string' || raw['brief'].length > PLAYBOOK_LIMITS.max_brief_chars) {
      c.add(
        `${path}.brief`,
        `a string of at most ${PLAYBOOK_LIMITS.max_brief_chars} characters`,
        raw['brief'],
      );
    } else brief = raw['brief'];
  }
  const inputs: string[] = [];
  if (raw['inputs'] !== undefined) {
    if (!Array.isArray(raw['inputs']))
      c.add(`${path}.inputs`, 'an array of stage ids or artifact keys', raw['inputs']);
    else {
      raw['inputs'].forEach((inp: unknown, i: number) => {
        if (typeof inp !== 'string' || !(STAGE_ID.test(inp) || isArtifactKey(inp))) {
          c.add(`${path}.inputs[${i}]`, 'a stage id or an artifact key', inp);
        } else inputs.push(inp);
      });
    }
  }
  let output: StageDefinition['output'] | undefined;
  const out = raw['output'];
  if (!isRecord(out)) c.add(`${path}.output`, 'an object { kind, key }', out);
  else {
    c.unknownFields(out, ['kind', 'key'], `${path}.output`);
    const kind = c.string(out, 'kind', `${path}.output`, KIND, 'an artifact kind of [A-Za-z0-9_.+/-]');
    let key: string | undefined;
    if (typeof out['key'] !== 'string' || !isArtifactKey(out['key'])) {
      c.add(
        `${path}.output.key`,
        'an artifact key: /-separated segments of [A-Za-z0-9._-], none starting with "."',
        out['key'],
      );
    } else key = out['key'];
    if (kind && key) output = { kind, key };
  }
  const timeout_ms =
    raw['timeout'] === undefined
      ? defaults.timeout_ms
      : c.duration(raw['timeout'], `${path}.timeout`, 1, PLAYBOOK_LIMITS.max_timeout_ms);
  const max_retries =
    raw['max_retries'] === undefined
      ? defaults.max_retries
      : c.int(raw['max_retries'], `${path}.max_retries`, 0, PLAYBOOK_LIMITS.max_retries);
  const backoff = readBackoff(c, raw['backoff'], `${path}.backoff`, defaults.backoff);

  const stage: Partial<StageDefinition> = {
    id,
    role,
    brief,
    inputs,
    output,
    timeout_ms,
    max_retries,
    backoff,
  };
  const review = raw['review'];
  if (review !== undefined) {
    if (!isRecord(review)) c.add(`${path}.review`, 'an object { on_reject }', review);
    else {
      c.unknownFields(review, ['on_reject'], `${path}.review`);
      const target = c.string(review, 'on_reject', `${path}.review`, STAGE_ID, 'a stage id');
      if (target) stage.review = { on_reject: target };
    }
  }
  const fanout = raw['fanout'];
  if (fanout !== undefined) {
    if (!isRecord(fanout)) c.add(`${path}.fanout`, 'an object { count, partition? }', fanout);
    else {
      c.unknownFields(fanout, ['count', 'partition'], `${path}.fanout`);
      const count = c.int(fanout['count'], `${path}.fanout.count`, 1, PLAYBOOK_LIMITS.max_workers_per_stage);
      const partition = fanout['partition'] ?? false;
      if (typeof partition !== 'boolean') c.add(`${path}.fanout.partition`, 'a boolean', partition);
      else if (count !== undefined) stage.fanout = { count, partition };
    }
  }
  const vote = raw['vote'];
  if (vote !== undefined) {
    if (!isRecord(vote)) c.add(`${path}.vote`, 'an object { voters, quorum }', vote);
    else {
      c.unknownFields(vote, ['voters', 'quorum'], `${path}.vote`);
      const voters = c.int(vote['voters'], `${path}.vote.voters`, 1, PLAYBOOK_LIMITS.max_workers_per_stage);
      const quorum = c.int(vote['quorum'], `${path}.vote.quorum`, 1, PLAYBOOK_LIMITS.max_workers_per_stage);
      if (voters !== undefined && quorum !== undefined) {
        if (quorum > voters) c.note(`${path}.vote.quorum`, `at most voters (${voters})`, String(quorum));
        else stage.vote = { voters, quorum };
      }
    }
  }
  const modes = [raw['review'], raw['fanout'], raw['vote']].filter((m) => m !== undefined).length;
  if (modes > 1) c.note(path, 'at most one of review, fanout, vote', `${modes} of them`);

  if (!id || !role || !output || timeout_ms === undefined || max_retries === undefined) return undefined;
  return stage as StageDefinition;
}

/**
 * Validates a parsed playbook (the object YAML or JSON decoding produced) and fills in defaults.
 * Never throws: every problem is returned as an issue with a JSON path.
 *
 * @example
 * ```ts
 * const r = validatePlaybook({ name: 'p', version: '1', stages: [{ id: 'a', role: 'dev', output: { kind: 'md', key: 'a.md' } }] });
 * if (!r.ok) console.log(r.issues.map((i) => i.path));
 * ```
 */
export function validatePlaybook(raw: unknown): PlaybookValidation {
  const c = new Collector();
  if (!isRecord(raw)) {
    c.add('$', 'a playbook object { name, version, stages, ... }', raw);
    return { ok: false, issues: c.issues };
  }
  c.unknownFields(raw, TOP_FIELDS, '');
  const name = c.string(
    raw,
    'name',
    '',
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/,
    'a name of [A-Za-z0-9_.-], at most 128',
  );
  let version: string | undefined;
  const rv = raw['version'];
  if (typeof rv === 'number' && Number.isFinite(rv)) version = String(rv);
  else if (typeof rv === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/.test(rv)) version = rv;
  else c.add('version', 'a version string such as "1.0.0"', rv);
  let description = '';
  if (raw['description'] !== undefined) {
    if (typeof raw['description'] !== 'string') c.add('description', 'a string', raw['description']);
    else description = raw['description'];
  }
  let objective: string | undefined;
  if (raw['objective'] !== undefined) {
    if (typeof raw['objective'] !== 'string') c.add('objective', 'a string template', raw['objective']);
    else objective = raw['objective'];
  }
  let budget: number = PLAYBOOK_DEFAULTS.context_budget_bytes;
  if (raw['context_budget_bytes'] !== undefined) {
    budget =
      c.int(
        raw['context_budget_bytes'],
        'context_budget_bytes',
        PLAYBOOK_LIMITS.min_context_budget_bytes,
        PLAYBOOK_LIMITS.max_context_budget_bytes,
      ) ?? budget;
  }
  let takeover_timeout_ms: number | undefined;
  if (raw['takeover_timeout'] !== undefined) {
    takeover_timeout_ms = c.duration(
      raw['takeover_timeout'],
      'takeover_timeout',
      1,
      PLAYBOOK_LIMITS.max_timeout_ms,
    );
  }
  const defaults = readDefaults(c, raw['defaults']);

  const stages: StageDefinition[] = [];
  const rs = raw['stages'];
  if (!Array.isArray(rs) || rs.length === 0 || rs.length > PLAYBOOK_LIMITS.max_stages) {
    c.add('stages', `an array of 1 to ${PLAYBOOK_LIMITS.max_stages} stages`, rs);
  } else {
    const index = new Map<string, number>();
    rs.forEach((s: unknown, i: number) => {
      const id = isRecord(s) ? s['id'] : undefined;
      if (typeof id === 'string') {
        if (index.has(id))
          c.note(
            `stages[${i}].id`,
            `a unique stage id (first used at stages[${index.get(id)}])`,
            JSON.stringify(id),
          );
        else index.set(id, i);
      }
    });
    const keys = new Map<string, number>();
    rs.forEach((s: unknown, i: number) => {
      const path = `stages[${i}]`;
      const stage = readStage(c, s, path, defaults);
      if (!stage) return;
      stages.push(stage);
      const prevKey = keys.get(stage.output.key);
      if (prevKey !== undefined) {
        c.note(
          `${path}.output.key`,
          `a key no other stage writes (stages[${prevKey}] writes it)`,
          JSON.stringify(stage.output.key),
        );
      } else keys.set(stage.output.key, i);
      stage.inputs.forEach((inp, j) => {
        const at = index.get(inp);
        if (at === undefined) return; // a vault key, resolved when the run starts
        if (at === i)
          c.note(
            `${path}.inputs[${j}]`,
            'an earlier stage (a stage cannot read its own output: cycle)',
            JSON.stringify(inp),
          );
        else if (at > i)
          c.note(
            `${path}.inputs[${j}]`,
            `an earlier stage (stages[${at}] runs later: cycle)`,
            JSON.stringify(inp),
          );
      });
      if (stage.review) {
        const at = index.get(stage.review.on_reject);
        const p = `${path}.review.on_reject`;
        if (at === undefined)
          c.note(p, 'the id of an earlier stage', `unknown stage ${JSON.stringify(stage.review.on_reject)}`);
        else if (at === i)
          c.note(
            p,
            'an earlier stage (rolling back to itself is a cycle)',
            JSON.stringify(stage.review.on_reject),
          );
        else if (at > i)
          c.note(p, `an earlier stage (stages[${at}] comes later)`, JSON.stringify(stage.review.on_reject));
      }
    });
  }
  if (c.issues.length > 0 || !name || !version) return { ok: false, issues: c.issues };
  const definition: PlaybookDefinition = { name, version, description, context_budget_bytes: budget, stages };
  if (objective !== undefined) definition.objective = objective;
  if (takeover_timeout_ms !== undefined) definition.takeover_timeout_ms = takeover_timeout_ms;
  return { ok: true, definition };
}

/**
 * Validates like {@link validatePlaybook} but throws {@link PlaybookValidationError} on any issue.
 *
 * @example
 * ```ts
 * const def = assertPlaybook(parsePlaybook(text));
 * ```
 */
export function assertPlaybook(raw: unknown): PlaybookDefinition {
  const r = validatePlaybook(raw);
  if (!r.ok) throw new PlaybookValidationError(r.issues);
  return r.definition;
}
