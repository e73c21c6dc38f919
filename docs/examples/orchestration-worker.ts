// Orchestration flow, the worker's side: the developer answers its stages from its own process.
// Run it with `tsx docs/examples/orchestration-worker.ts DATA_DIR DEVELOPER_DID`; it serves until SIGTERM.
import { connect } from 'agentnexus-runtime/sdk';

const [dataDir, did] = process.argv.slice(2);
if (dataDir === undefined || did === undefined) {
  console.error('usage: orchestration-worker.ts DATA_DIR DEVELOPER_DID');
  process.exit(2);
}

const worker = await connect({ dataDir, did });
process.once('SIGTERM', () => void worker.close());

worker.worker.onStage('developer', async (ctx) => {
  // An objective on hold is left running: the Owner decides (here: aborts it).
  if (ctx.snapshot.objective.includes('hold:')) return;
  const patch = `diff --git a/login.ts b/login.ts\n+export function login() { /* ${ctx.snapshot.objective} */ }\n`;
  await ctx.deliver({ kind: 'code_diff', value: patch, summary: 'login module implemented' });
});
console.log(JSON.stringify({ did: worker.did, ready: true }));
