// A stand-in for a script run by the built-in script worker: `node script-agent.mjs MODE STATE_FILE`, the snapshot on stdin.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [mode = 'echo', state] = process.argv.slice(2);
const snapshot = JSON.parse(readFileSync(0, 'utf8'));

function echo(note = '') {
  process.stdout.write(
    [
      `# ${process.env.ANX_STAGE} by the script${note}`,
      '',
      `objective: ${snapshot.objective}`,
      `brief: ${snapshot.stage.brief}`,
      `inputs: ${snapshot.inputs.map((r) => r.key).join(', ')}`,
      `feedback: ${snapshot.feedback ?? ''}`,
      '',
    ].join('\n'),
  );
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
    process.stdout.write('the change has no tests\n');
    process.exit(10);
    break;
  case 'flaky':
    if (existsSync(state)) echo(' (second try)');
    else {
      writeFileSync(state, 'tried');
      process.stderr.write('thinking\nflaky: first attempt breaks\n');
      process.exit(4);
    }
    break;
  case 'hang':
    writeFileSync(state, String(process.pid));
    process.stderr.write('thinking forever\n');
    setInterval(() => {}, 1000);
    break;
  default:
    process.stderr.write(`unknown mode ${mode}\n`);
    process.exit(2);
}
