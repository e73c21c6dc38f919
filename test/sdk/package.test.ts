// The published package as a consumer gets it: the built entries run under plain Node (no tsx, no
// TypeScript sources) and type-check in a strict project that cannot import `.ts` files.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildPackage } from '../../scripts/build-package.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MANIFEST = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, string | Record<string, string>>;
  files: string[];
};

let pkg: string;
let app: string;

beforeAll(async () => {
  const base = tempDir();
  // The package as installed: its manifest and build, its dependencies beside it.
  pkg = join(base, 'pkg');
  mkdirSync(pkg);
  cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
  await buildPackage(join(pkg, 'dist'));
  symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'), 'dir');
  // A consumer project that depends on it.
  app = join(base, 'app');
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  symlinkSync(pkg, join(app, 'node_modules', MANIFEST.name), 'dir');
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'consumer', type: 'module', private: true }),
  );
}, 120_000);

afterAll(() => cleanupTempDirs());

function exportTargets(): string[] {
  const out: string[] = [];
  for (const [entry, target] of Object.entries(MANIFEST.exports)) {
    if (typeof target === 'string') out.push(target);
    else
      for (const [condition, path] of Object.entries(target)) if (condition !== 'anx-source') out.push(path);
    expect(entry.startsWith('.')).toBe(true);
  }
  return out.map((p) => p.replace(/^\.\//, ''));
}

it('every export target a consumer resolves is built and inside the published files', () => {
  const packed = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: pkg,
    encoding: 'utf8',
  });
  expect(packed.status, packed.stderr).toBe(0);
  const listed = new Set(
    (JSON.parse(packed.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path),
  );
  for (const target of exportTargets()) {
    expect(existsSync(join(pkg, target)), target).toBe(true);
    expect(listed.has(target), `${target} is not in "files"`).toBe(true);
  }
  // Declarations import declarations, never TypeScript sources.
  const sdkTypes = readFileSync(join(pkg, 'dist/types/bridge/sdk/index.d.ts'), 'utf8');
  expect(sdkTypes).toContain("from './connect.js'");
  expect(sdkTypes).not.toMatch(/from '[^']+\.ts'/);
});

it('runs under plain Node: two embedded agents exchange a message, errors keep their classes across entries', () => {
  writeFileSync(
    join(app, 'main.mjs'),
    `import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnxError as KernelError, Host, isDid } from '${MANIFEST.name}';
import { AnxError, connect, SdkArgumentError } from '${MANIFEST.name}/sdk';

const dataDir = mkdtempSync(join(tmpdir(), 'anx-consumer-'));
const host = await Host.open({ dataDir, noSync: true });
try {
  const alice = await connect({ mode: 'embedded', host, name: 'Alice' });
  const bob = await connect({ mode: 'embedded', host, name: 'Bob' });
  await alice.send(bob.did, { text: 'hello' });
  let page = await bob.inbox();
  for (let i = 0; i < 200 && page.messages.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
    page = await bob.inbox();
  }
  let refused;
  try {
    await connect({ mode: 'sideways' });
  } catch (err) {
    refused = err;
  }
  console.log(JSON.stringify({
    alice: isDid(alice.did, 'agentnexus'),
    got: page.messages.map((m) => ({ from: m.from === alice.did, body: m.body })),
    sdkError: refused instanceof SdkArgumentError && refused instanceof AnxError,
    sameClass: AnxError === KernelError,
    code: refused?.code,
  }));
  await alice.close();
  await bob.close();
} finally {
  await host.close();
  rmSync(dataDir, { recursive: true, force: true });
}
`,
  );
  const run = spawnSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8', timeout: 60_000 });
  expect(run.status, run.stderr).toBe(0);
  expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).toEqual({
    alice: true,
    got: [{ from: true, body: { text: 'hello' } }],
    sdkError: true,
    sameClass: true,
    code: 'ANX_SDK_ARGUMENT',
  });
}, 90_000);

it('type-checks in a strict consumer project, and a wrong call is a type error', () => {
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      files: ['agent.ts'],
    }),
  );
  const agent = (
    body: string,
  ): string => `import { type AnxClient, connect, type Dispatch, SdkArgumentError } from '${MANIFEST.name}/sdk';
import { type EventV1, Host } from '${MANIFEST.name}';

export async function main(dataDir: string): Promise<void> {
  const host: Host = await Host.open({ dataDir });
  const client: AnxClient = await connect({ mode: 'embedded', host, name: 'Typed' });
  const runs: Dispatch | undefined = undefined;
  const seen: EventV1[] = [];
  void runs;
  void seen;
  void SdkArgumentError;
  ${body}
}
`;
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  // Library checking stays on so the package's declarations are checked too; what third-party
  // declarations report (lmdb's `export =` under NodeNext) is theirs, not the package's.
  const errors = (): string[] => {
    const run = spawnSync(process.execPath, [tsc, '-p', app], { cwd: app, encoding: 'utf8' });
    return run.stdout
      .split('\n')
      .filter((line) => /error TS\d+/.test(line) && !line.includes('node_modules/'));
  };
  writeFileSync(join(app, 'agent.ts'), agent("await client.send(client.did, { text: 'hi' });"));
  expect(errors()).toEqual([]);

  writeFileSync(join(app, 'agent.ts'), agent('await client.send(42);'));
  const bad = errors();
  expect(bad).toHaveLength(1);
  expect(bad[0]).toMatch(/^agent\.ts\(\d+,\d+\): error TS2345/);
}, 120_000);
