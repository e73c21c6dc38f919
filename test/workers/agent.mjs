// A stand-in for a coding agent's non-interactive mode, run by the CLI worker tests: `node agent.mjs MODE [STATE_FILE]`.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [mode = 'echo', state] = process.argv.slice(2);
const stdin = readFileSync(0, 'utf8');
const prompt = readFileSync(process.env.ANX_PROMPT_FILE, 'utf8');

function echo(note = '') {
  const context = stdin === '' ? {} : JSON.parse(stdin);
  process.stderr.write(`thinking about ${context.stage?.id ?? process.env.ANX_STAGE}\n`);
  process.stdout.write(`# ${process.env.ANX_STAGE} by the agent${note}\n\n${prompt}`);
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
    // A grandchild in the same process group, its pid left for the test to check.
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    writeFileSync(state, `${process.pid} ${child.pid}`);
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
