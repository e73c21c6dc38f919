// Builds the published entries: `dist/index.js` (kernel) and `dist/sdk/index.js` (SDK) as ES modules for
// Node 20 with their dependencies left as imports, and `.d.ts` declarations under `dist/types`.
//
//   npm run build                       # into ./dist
//   tsx scripts/build-package.ts --out D  # into D (the package test builds into a temp dir)
//
// Inside this repository the entries resolve to the TypeScript sources through the `anx-source` export
// condition (tsconfig `customConditions`, vitest, `node --conditions=anx-source`); everyone else gets dist.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The published entries: output name (under the out dir, without `.js`) → TypeScript source. */
export const ENTRIES = {
  index: 'runtime/index.ts',
  'sdk/index': 'bridge/sdk/index.ts',
} as const;

/** Where the declarations of each entry land, relative to the out dir. */
export const TYPES = {
  index: 'types/runtime/index.d.ts',
  'sdk/index': 'types/bridge/sdk/index.d.ts',
} as const;

export interface BuildResult {
  outDir: string;
  files: string[];
}

/** Bundles the entries and emits their declarations into `outDir` (emptied first). */
export async function buildPackage(outDir: string = join(ROOT, 'dist')): Promise<BuildResult> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build({
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([out, src]) => [out, join(ROOT, src)])),
    outdir: outDir,
    bundle: true,
    // Dependencies stay imports: the package's own dependencies resolve them, and native ones (lmdb) must.
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Shared code is one chunk, so the kernel entry and the SDK entry share one copy of every class
    // (an `AnxError` from one is an `AnxError` to the other).
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  emitDeclarations(join(outDir, 'types'));
  return { outDir, files: listFiles(outDir).map((f) => relative(outDir, f)) };
}

/**
 * Emits `.d.ts` files with `tsc`, then points their relative imports at `.js` (sources import `.ts`; a
 * consumer's TypeScript resolves `./x.js` to `./x.d.ts` under any module resolution).
 */
function emitDeclarations(typesDir: string): void {
  const config = join(typesDir, '..', 'tsconfig.types.json');
  writeFileSync(
    config,
    JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: {
        noEmit: false,
        declaration: true,
        emitDeclarationOnly: true,
        rootDir: ROOT,
        outDir: typesDir,
        typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      include: [],
      files: Object.values(ENTRIES).map((src) => join(ROOT, src)),
    }),
  );
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', config], { cwd: ROOT, encoding: 'utf8' });
  rmSync(config);
  if (run.status !== 0) throw new Error(`tsc could not emit the declarations:\n${run.stdout}${run.stderr}`);
  for (const file of listFiles(typesDir)) {
    if (!file.endsWith('.d.ts')) continue;
    const text = readFileSync(file, 'utf8');
    const rewritten = text.replace(
      /(from\s+|import\s*\(\s*|import\s+)(['"])(\.{1,2}\/[^'"]+?)\.ts\2/g,
      (_m, lead: string, quote: string, path: string) => `${lead}${quote}${path}.js${quote}`,
    );
    if (rewritten !== text) writeFileSync(file, rewritten);
  }
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path));
    else out.push(path);
  }
  return out.sort();
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--out');
  const outDir = at >= 0 && process.argv[at + 1] !== undefined ? resolve(process.argv[at + 1]!) : undefined;
  const result = await buildPackage(outDir);
  const js = result.files.filter((f) => f.endsWith('.js')).length;
  const dts = result.files.filter((f) => f.endsWith('.d.ts')).length;
  console.log(
    `built ${js} modules and ${dts} declaration files into ${relative(process.cwd(), result.outDir) || '.'}`,
  );
}
