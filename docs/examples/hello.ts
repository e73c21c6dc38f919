// Reference flow, the asking side: "connect as Developer and send Hello", then wait for the answer.
import { type AnxClient, connect } from 'agentnexus-runtime/sdk';

/**
 * Connects to the daemon of `dataDir` as "Developer", sends "Hello" to `to` and returns the first
 * message that comes back from it.
 */
export async function hello(dataDir: string, to: string): Promise<{ from: string; text: string }> {
  const developer: AnxClient = await connect('Developer', { dataDir });
  try {
    // Start listening before sending, so the answer cannot slip by.
    const inbox = developer.messages();
    await developer.send(to, { text: 'Hello' });
    for await (const message of inbox) {
      if (message.from !== to) continue;
      return { from: message.from, text: String((message.body as { text?: unknown }).text) };
    }
    throw new Error('the client closed before an answer came');
  } finally {
    await developer.close();
  }
}
