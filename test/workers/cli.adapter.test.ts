// The shared worker adapter suite against the CLI adapter, with a small node script as the agent.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { adapterSuite } from './adapter.case.ts';
import { AGENT, processGone } from './agent.ts';

adapterSuite('cli', async () => {
  const dir = tempDir('anx-cli-adapter-');
  const state = join(dir, 'agent.state');
  const pids = () =>
    existsSync(state) && readFileSync(state, 'utf8').includes(' ')
      ? readFileSync(state, 'utf8').split(' ').map(Number)
      : undefined;
  return {
    config: (mode, { timeoutMs }) => ({
      adapter: 'cli',
      command: [process.execPath, AGENT, mode, state],
      workdir_root: join(dir, 'work'),
      timeout_ms: timeoutMs,
      kill_grace_ms: 500,
    }),
    failure: /exited with 3: thinking hard\nboom: the agent gave up/,
    timeout: /timed out after 1500 ms: thinking forever/,
    started: () => pids() !== undefined,
    stopped: () => {
      const p = pids();
      return p?.every(processGone) === true;
    },
    cleanup: async () => {
      // A test that failed half-way may leave its agent running: stop what we started, by pid.
      for (const pid of pids() ?? []) if (!processGone(pid)) process.kill(pid, 'SIGKILL');
    },
  };
});
