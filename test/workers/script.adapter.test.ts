// The shared worker adapter suite against the built-in script worker, with the stand-in agent as the script.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scriptHandler } from '../../bridge/workers/script.ts';
import { tempDir } from '../helpers/tmp.ts';
import { adapterSuite } from './adapter.case.ts';
import { AGENT, processGone } from './agent.ts';

adapterSuite(
  'script',
  async () => {
    const state = join(tempDir('anx-script-worker-'), 'script.state');
    const pid = () =>
      existsSync(state) && /^\d+$/.test(readFileSync(state, 'utf8'))
        ? Number(readFileSync(state, 'utf8'))
        : undefined;
    return {
      handler: (mode, { timeoutMs }) =>
        scriptHandler({ argv: [process.execPath, AGENT, mode, state], timeout_ms: timeoutMs }),
      failure: /exited with 3: thinking hard\nboom: the agent gave up/,
      timeout: /timed out after 1500 ms: thinking forever/,
      started: () => pid() !== undefined,
      stopped: () => processGone(pid() ?? 0),
      cleanup: async () => {
        const p = pid();
        if (p !== undefined && !processGone(p)) process.kill(p, 'SIGKILL');
      },
    };
  },
  // The script gets the Context Snapshot on stdin and streams nothing.
  { prompt: false, progress: false },
);
