// Public entry of playbooks: definitions, validation, parsing, the run statechart compiler, context budget, templates.
export {
  armedTimers,
  compilePlaybook,
  initialRunContext,
  isArtifactRef,
  type RunDelay,
  type RunMachine,
  runDelay,
} from './compile.ts';
export {
  buildContextSnapshot,
  type ContextSnapshot,
  type HandoffCheckpoint,
  jsonBytes,
  makeHandoffCheckpoint,
  stageRefs,
} from './context.ts';
export {
  type ArtifactRef,
  type BackoffSpec,
  backoffDelay,
  type FanoutSpec,
  PLAYBOOK_DEFAULTS,
  PLAYBOOK_LIMITS,
  type PlaybookDefinition,
  type ReviewSpec,
  type StageDefinition,
  type StageOutput,
  type VoteSpec,
  workerCount,
} from './definition.ts';
export { loadPlaybook, PlaybookParseError, parsePlaybook } from './parse.ts';
export type {
  DeliveryManifestContent,
  RunContext,
  RunEffect,
  RunEvent,
  RunInput,
  SendEffect,
  ShardExecution,
  StageExecution,
  StageStatus,
  TraceEffect,
} from './run.ts';
export { PLAYBOOK_TEMPLATES, playbookTemplate, TEMPLATE_NAMES, type TemplateName } from './templates.ts';
export {
  assertPlaybook,
  isArtifactKey,
  type PlaybookIssue,
  type PlaybookValidation,
  PlaybookValidationError,
  parseDuration,
  validatePlaybook,
} from './validate.ts';
