// A stand-in for a coding agent's non-interactive mode, run by the CLI worker tests: `node agent.mjs MODE [STATE_FILE]`.
// Run by the script worker instead, it has no prompt file: it works from the snapshot on stdin and rejects by exit code.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [mode = 'echo', state] = process.argv.slice(2);
const stdin = readFileSync(0, 'utf8');
const promptFile = process.env.ANX_PROMPT_FILE;
const prompt = promptFile === undefined ? undefined : readFileSync(promptFile, 'utf8');

function echo(note = '') {
  const context = stdin === '' ? {} : JSON.parse(stdin);
  process.stderr.write(`thinking about ${context.stage?.id ?? process.env.ANX_STAGE}\n`);
  const body =
    prompt ??
    [
      `objective: ${context.objective}`,
      `brief: ${context.stage?.brief}`,
      `inputs: ${(context.inputs ?? []).map((r) => r.key).join(', ')}`,
      `feedback: ${context.feedback ?? ''}`,
      '',
    ].join('\n');
  process.stdout.write(`# ${process.env.ANX_STAGE} by the agent${note}\n\n${body}`);
}

switch (mode) {
  case 'echo':
    echo();
    break;
  case 'fail':
    process.stderr.write('thinking hard\nboom: the agent gave up\n');
    process.exit(3);
    break;
  case 'reject':
    process.stderr.write('thinking about the review\n');
    if (prompt === undefined) {
      process.stdout.write('the change has no tests\n');
      process.exit(10);
    }
    process.stdout.write('REJECT: the change has no tests\n');
    break;
  case 'flaky':
    if (existsSync(state)) echo(' (second try)');
    else {
      writeFileSync(state, 'tried');
      process.stderr.write('thinking\nflaky: first attempt breaks\n');
      process.exit(4);
    }
    break;
  case 'hang': {
    // A grandchild in the same process group, its pid left for the test to check (the script worker
    // stops only the process it started, so there is none then).
    const child =
      prompt === undefined
        ? undefined
        : spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    writeFileSync(state, child === undefined ? `${process.pid}` : `${process.pid} ${child.pid}`);
    process.stderr.write('thinking forever\n');
    setInterval(() => {}, 1000);
    break;
  }
  case 'env':
    process.stdout.write(JSON.stringify(process.env));
    break;
  case 'argv':
    process.stdout.write(JSON.stringify(process.argv.slice(3)));
    break;
  default:
    process.stderr.write(`unknown mode ${mode}\n`);
    process.exit(2);
}
