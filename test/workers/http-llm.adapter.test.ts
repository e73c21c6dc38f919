// The shared worker adapter suite against the HTTP LLM adapter, once per protocol, each with a server on loopback.
import { adapterSuite, type Mode } from './adapter.case.ts';
import { type FakeLlm, lastUser, type Protocol, type Reply, startFakeLlm } from './fake-llm.ts';

const KEY_ENV = 'ANX_TEST_LLM_KEY';
process.env[KEY_ENV] = 'sk-test-7d1e0b';

function reply(mode: Mode, body: Record<string, unknown>, n: number): Reply {
  const echo = (): Reply => ({
    type: 'stream',
    reasoning: 'thinking about the design',
    text: `# Design by ${String(body['model'])}\n\n${lastUser(body)}`,
  });
  switch (mode) {
    case 'echo':
      return echo();
    case 'fail':
      return { type: 'error', status: 401, message: 'Invalid API key provided' };
    case 'flaky':
      return n === 0 ? { type: 'broken', text: 'half an answ' } : echo();
    case 'hang':
      return { type: 'hang' };
    case 'reject':
      return {
        type: 'stream',
        reasoning: 'thinking about the review',
        text: 'REJECT: the change has no tests\n',
      };
  }
}

for (const protocol of ['openai', 'ollama'] as Protocol[]) {
  adapterSuite(protocol, async () => {
    let mode: Mode = 'echo';
    const fake: FakeLlm = await startFakeLlm(protocol, (body, n) => reply(mode, body, n));
    let closed = false;
    return {
      config: (m, { timeoutMs }) => {
        mode = m;
        return {
          adapter: protocol,
          endpoint: fake.url,
          model: 'test-model',
          api_key_env: KEY_ENV,
          timeout_ms: timeoutMs,
          retry_backoff_ms: 50,
        };
      },
      failure: /answered 401 Unauthorized: Invalid API key provided/,
      timeout: /did not finish within 1500 ms/,
      started: () => {
        const first = fake.requests[0];
        if (first === undefined) return false;
        void first.closed.then(() => {
          closed = true;
        });
        return true;
      },
      stopped: async () => {
        const first = fake.requests[0];
        if (first !== undefined) void first.closed.then(() => (closed = true));
        await new Promise((r) => setImmediate(r));
        return closed;
      },
      cleanup: () => fake.close(),
    };
  });
}
