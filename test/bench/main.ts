// `npm run bench`: runs the bench groups and prints a table, or one JSON object with `--json`.
import { envelopeGroup } from '../envelope/envelope.bench.ts';
import { authorityGroup } from './authority.ts';
import { cryptoGroup } from './crypto.ts';
import type { BenchGroup, BenchResult } from './harness.ts';
import { kernelGroup } from './kernel.ts';
import { playgroundGroup } from './playground.ts';
import { relayGroup } from './relay.ts';
import { sdkGroup } from './sdk.ts';
import { teamworkGroup } from './teamwork.ts';

const groups: BenchGroup[] = [
  cryptoGroup,
  envelopeGroup,
  kernelGroup,
  relayGroup,
  teamworkGroup,
  sdkGroup,
  playgroundGroup,
  authorityGroup,
];

function usage(): never {
  process.stderr.write(
    `usage: npm run bench -- [--json] [--only GROUP[,GROUP]]\ngroups: ${groups.map((g) => g.name).join(', ')}\n`,
  );
  process.exit(2);
}

const args = process.argv.slice(2);
let json = false;
let only: string[] | undefined;
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--json') json = true;
  else if (arg === '--only') only = (args[++i] ?? usage()).split(',');
  else if (arg?.startsWith('--only=')) only = arg.slice(7).split(',');
  else if (arg === '--help' || arg === '-h') usage();
  else usage();
}
const unknown = only?.filter((name) => !groups.some((g) => g.name === name)) ?? [];
if (unknown.length > 0) {
  process.stderr.write(`unknown bench group: ${unknown.join(', ')}\n`);
  usage();
}

// Progress goes to stderr so `--json` output stays one parseable object on stdout.
const log = (line: string) => process.stderr.write(`${line}\n`);
const results: BenchResult[] = [];
for (const group of groups) {
  if (only !== undefined && !only.includes(group.name)) continue;
  log(`[${group.name}]`);
  const started = Date.now();
  results.push(...(await group.run(log)));
  log(`[${group.name}] done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

const fmt = (n: number | undefined) =>
  n === undefined ? '' : Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(3);
if (json) {
  process.stdout.write(
    `${JSON.stringify({ results: results.map(({ id, value, unit, raw, ratio }) => ({ id, value, unit, ...(raw === undefined ? {} : { raw }), ...(ratio === undefined ? {} : { ratio }) })) })}\n`,
  );
} else {
  const rows = [
    ['id', 'value', 'unit', 'raw', 'ratio', 'note'],
    ...results.map((r) => [r.id, fmt(r.value), r.unit, fmt(r.raw), fmt(r.ratio), r.note ?? '']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows)
    process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}\n`);
}
process.exit(0);
