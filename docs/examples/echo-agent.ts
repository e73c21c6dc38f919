// Reference flow, the answering side: an agent that connects to the daemon as "Echo" and answers every message.
// Run it with `tsx docs/examples/echo-agent.ts DATA_DIR`; it prints its DID, then serves until SIGTERM.
import { connect } from 'agentnexus-runtime/sdk';

const dataDir = process.argv[2];
if (dataDir === undefined) {
  console.error('usage: echo-agent.ts DATA_DIR');
  process.exit(2);
}

const echo = await connect('Echo', { dataDir });
process.once('SIGTERM', () => void echo.close());
console.log(JSON.stringify({ did: echo.did }));

// Ends when the client closes.
for await (const message of echo.messages()) {
  const text = (message.body as { text?: unknown } | undefined)?.text;
  await echo.send(message.from, { text: `echo: ${String(text)}` }, { type: 'message' });
}
