// Types of a playbook definition (the validated, normalised form) and of the values a run passes around.

/**
 * Reference to one version of a vault artifact: what stages pass to each other instead of bodies.
 * Structurally identical to the vault's `ArtifactRef`; kept here so pure machines need no kernel import.
 */
export interface ArtifactRef {
  enclave_id: string;
  key: string;
  version: number;
  /** sha256 of the content, lowercase hex. */
  hash: string;
  size: number;
  summary: string;
}

/** Exponential retry backoff: `min(initial_ms * factor^(retry-1), max_ms)`. */
export interface BackoffSpec {
  initial_ms: number;
  factor: number;
  max_ms: number;
}

/** What a stage is expected to write to the vault. */
export interface StageOutput {
  kind: string;
  key: string;
}

/**
 * Fan-out: `count` workers run the stage at once; the stage is done when all have delivered.
 * With `partition` each worker gets its shard index and the shard count (map-reduce's map step);
 * without it every worker gets the same work (parallel, then a later stage merges).
 */
export interface FanoutSpec {
  count: number;
  partition: boolean;
}

/** Vote: `voters` workers each deliver a `choice`; the first choice to reach `quorum` decides. */
export interface VoteSpec {
  voters: number;
  quorum: number;
}

/** A review stage: a rejection rolls the run back to `on_reject` (an earlier stage). */
export interface ReviewSpec {
  on_reject: string;
}

/** One stage of a validated playbook; durations are milliseconds. */
export interface StageDefinition {
  id: string;
  role: string;
  brief: string;
  /** Earlier stage ids (their output refs) or vault keys (refs supplied when the run starts). */
  inputs: string[];
  output: StageOutput;
  timeout_ms: number;
  max_retries: number;
  backoff: BackoffSpec;
  review?: ReviewSpec;
  fanout?: FanoutSpec;
  vote?: VoteSpec;
}

/** A validated, normalised playbook: every default filled in, every duration in milliseconds. */
export interface PlaybookDefinition {
  name: string;
  version: string;
  description: string;
  /** Template for the run objective; `{{objective}}` is replaced by the objective given at start. */
  objective?: string;
  /** Upper bound, in bytes of JSON, of each Context Snapshot handed to a stage. */
  context_budget_bytes: number;
  /** If set, a run left in takeover this long without an Owner decision fails. */
  takeover_timeout_ms?: number;
  stages: StageDefinition[];
}

/** Defaults applied by validation when a field is left out. */
export const PLAYBOOK_DEFAULTS = {
  context_budget_bytes: 8192,
  timeout_ms: 30 * 60_000,
  max_retries: 2,
  backoff: { initial_ms: 1_000, factor: 2, max_ms: 60_000 } satisfies BackoffSpec,
} as const;

/** Hard limits that keep a compiled run's persisted snapshot bounded. */
export const PLAYBOOK_LIMITS = {
  max_stages: 200,
  max_workers_per_stage: 64,
  max_retries: 100,
  max_timeout_ms: 7 * 24 * 3600_000,
  min_context_budget_bytes: 1024,
  max_context_budget_bytes: 1024 * 1024,
  max_brief_chars: 16_384,
} as const;

/** Number of workers a stage runs at once (1 unless it fans out or votes). */
export function workerCount(stage: StageDefinition): number {
  return stage.fanout?.count ?? stage.vote?.voters ?? 1;
}

/** Delay before retry number `retry` (1-based) of a stage. */
export function backoffDelay(backoff: BackoffSpec, retry: number): number {
  const exp = Math.max(0, retry - 1);
  return Math.min(backoff.max_ms, Math.round(backoff.initial_ms * backoff.factor ** exp));
}
