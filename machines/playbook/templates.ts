// Built-in playbooks: the collaboration modes (sequential teams, parallel, map-reduce, voting) as ready definitions.
import type { PlaybookDefinition } from './definition.ts';
import { assertPlaybook } from './validate.ts';

/** Names of the built-in templates. */
export type TemplateName =
  | 'dev-team'
  | 'pipeline'
  | 'incident-triage'
  | 'code-fix'
  | 'parallel'
  | 'map-reduce'
  | 'vote';

/** The templates in their raw (YAML-equivalent) form, as a user would write them. */
export const PLAYBOOK_TEMPLATES: Readonly<Record<TemplateName, Readonly<Record<string, unknown>>>> = {
  'dev-team': {
    name: 'dev-team',
    version: '1.0.0',
    description:
      'Requirements, design, implementation, test and review; review rejections go back to implement.',
    objective: '{{objective}}',
    takeover_timeout: '72h',
    defaults: { timeout: '30m', max_retries: 2, backoff: { initial: '5s', factor: 2, max: '2m' } },
    stages: [
      {
        id: 'requirements',
        role: 'pm',
        brief: 'Write the requirements: scope, user stories, acceptance criteria.',
        output: { kind: 'markdown', key: 'requirements/requirements.md' },
      },
      {
        id: 'design',
        role: 'architect',
        brief: 'Design the solution that meets the requirements: components, interfaces, risks.',
        inputs: ['requirements'],
        output: { kind: 'markdown', key: 'design/spec.md' },
      },
      {
        id: 'implement',
        role: 'developer',
        brief: 'Implement the design; deliver the change as a patch.',
        inputs: ['requirements', 'design'],
        output: { kind: 'code_diff', key: 'impl/diff.patch' },
        timeout: '2h',
      },
      {
        id: 'test',
        role: 'tester',
        brief: 'Test the change against the acceptance criteria; report what passed and failed.',
        inputs: ['requirements', 'implement'],
        output: { kind: 'markdown', key: 'test/report.md' },
      },
      {
        id: 'review',
        role: 'reviewer',
        brief: 'Review the change and the test report; approve, or reject with what must change.',
        inputs: ['design', 'implement', 'test'],
        output: { kind: 'markdown', key: 'review/report.md' },
        review: { on_reject: 'implement' },
      },
    ],
  },
  pipeline: {
    name: 'pipeline',
    version: '1.0.0',
    description: 'A sequential pipeline: analyze, execute, verify, summarize.',
    stages: [
      {
        id: 'analyze',
        role: 'analyst',
        brief: 'Analyze the objective and plan the work.',
        output: { kind: 'markdown', key: 'pipeline/analysis.md' },
      },
      {
        id: 'execute',
        role: 'executor',
        brief: 'Carry out the plan.',
        inputs: ['analyze'],
        output: { kind: 'markdown', key: 'pipeline/result.md' },
      },
      {
        id: 'verify',
        role: 'verifier',
        brief: 'Check the result against the plan; reject with reasons if it falls short.',
        inputs: ['analyze', 'execute'],
        output: { kind: 'markdown', key: 'pipeline/verification.md' },
        review: { on_reject: 'execute' },
      },
      {
        id: 'summarize',
        role: 'writer',
        brief: 'Summarize what was done for the requester.',
        inputs: ['execute', 'verify'],
        output: { kind: 'markdown', key: 'pipeline/summary.md' },
      },
    ],
  },
  'incident-triage': {
    name: 'incident-triage',
    version: '1.0.0',
    description: 'Detect, diagnose, mitigate and write the postmortem of an incident.',
    takeover_timeout: '4h',
    defaults: { timeout: '15m', max_retries: 1, backoff: { initial: '2s', factor: 2, max: '30s' } },
    stages: [
      {
        id: 'detect',
        role: 'oncall',
        brief: 'Confirm the incident, its scope and severity.',
        output: { kind: 'markdown', key: 'incident/detection.md' },
      },
      {
        id: 'diagnose',
        role: 'sre',
        brief: 'Find the probable cause.',
        inputs: ['detect'],
        output: { kind: 'markdown', key: 'incident/diagnosis.md' },
      },
      {
        id: 'mitigate',
        role: 'sre',
        brief: 'Mitigate the impact; record every action taken.',
        inputs: ['diagnose'],
        output: { kind: 'markdown', key: 'incident/mitigation.md' },
      },
      {
        id: 'postmortem',
        role: 'oncall',
        brief: 'Write the blameless postmortem: timeline, cause, follow-ups.',
        inputs: ['detect', 'diagnose', 'mitigate'],
        output: { kind: 'markdown', key: 'incident/postmortem.md' },
        timeout: '4h',
      },
    ],
  },
  'code-fix': {
    name: 'code-fix',
    version: '1.0.0',
    description: 'Analyze a defect, modify the code, test it and summarize the fix.',
    stages: [
      {
        id: 'analyze',
        role: 'developer',
        brief: 'Reproduce the defect and locate its cause.',
        output: { kind: 'markdown', key: 'fix/analysis.md' },
      },
      {
        id: 'modify',
        role: 'developer',
        brief: 'Change the code to fix the cause.',
        inputs: ['analyze'],
        output: { kind: 'code_diff', key: 'fix/diff.patch' },
      },
      {
        id: 'test',
        role: 'tester',
        brief: 'Run the tests and the reproduction; reject with the failures if the fix does not hold.',
        inputs: ['analyze', 'modify'],
        output: { kind: 'markdown', key: 'fix/test-report.md' },
        review: { on_reject: 'modify' },
      },
      {
        id: 'summarize',
        role: 'developer',
        brief: 'Summarize cause, fix and evidence.',
        inputs: ['modify', 'test'],
        output: { kind: 'markdown', key: 'fix/summary.md' },
      },
    ],
  },
  parallel: {
    name: 'parallel',
    version: '1.0.0',
    description: 'Fan out the same work to several workers, then merge their answers.',
    stages: [
      {
        id: 'work',
        role: 'worker',
        brief: 'Work on the objective independently of the others.',
        output: { kind: 'markdown', key: 'parallel/answer.md' },
        fanout: { count: 3 },
      },
      {
        id: 'merge',
        role: 'merger',
        brief: 'Merge the answers into one, keeping the best of each.',
        inputs: ['work'],
        output: { kind: 'markdown', key: 'parallel/merged.md' },
      },
    ],
  },
  'map-reduce': {
    name: 'map-reduce',
    version: '1.0.0',
    description: 'Split the input, process each shard in parallel, reduce the results.',
    stages: [
      {
        id: 'split',
        role: 'planner',
        brief: 'Split the input into shards, one artifact listing them.',
        output: { kind: 'json', key: 'mapreduce/shards.json' },
      },
      {
        id: 'map',
        role: 'mapper',
        brief: 'Process your shard (index and count are in the context).',
        inputs: ['split'],
        output: { kind: 'json', key: 'mapreduce/mapped.json' },
        fanout: { count: 4, partition: true },
      },
      {
        id: 'reduce',
        role: 'reducer',
        brief: 'Combine the mapped results.',
        inputs: ['map'],
        output: { kind: 'markdown', key: 'mapreduce/result.md' },
      },
    ],
  },
  vote: {
    name: 'vote',
    version: '1.0.0',
    description: 'Several workers answer; the first answer to reach the quorum decides.',
    stages: [
      {
        id: 'frame',
        role: 'moderator',
        brief: 'State the question and the allowed choices.',
        output: { kind: 'markdown', key: 'vote/question.md' },
      },
      {
        id: 'ballot',
        role: 'voter',
        brief: 'Answer the question with one of the allowed choices and your reasons.',
        inputs: ['frame'],
        output: { kind: 'markdown', key: 'vote/ballot.md' },
        vote: { voters: 3, quorum: 2 },
      },
      {
        id: 'conclude',
        role: 'moderator',
        brief: 'Record the decision and the dissent.',
        inputs: ['frame', 'ballot'],
        output: { kind: 'markdown', key: 'vote/conclusion.md' },
      },
    ],
  },
};

/** The names of every built-in template. */
export const TEMPLATE_NAMES = Object.keys(PLAYBOOK_TEMPLATES) as TemplateName[];

/**
 * A built-in template, validated and normalised.
 *
 * @example
 * ```ts
 * const machine = compilePlaybook(playbookTemplate('dev-team'));
 * ```
 */
export function playbookTemplate(name: TemplateName): PlaybookDefinition {
  return assertPlaybook(structuredClone(PLAYBOOK_TEMPLATES[name]));
}
