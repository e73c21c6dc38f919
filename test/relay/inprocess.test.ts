// The in-process transport runs the shared transport suite.
import { InProcessTransport, Switchboard } from '../../runtime/transport/inprocess.ts';
import { transportCases } from './transport.case.ts';

transportCases('in-process', async () => {
  const board = new Switchboard();
  const a = new InProcessTransport(board);
  const b = new InProcessTransport(board);
  return {
    a,
    b,
    settle: async () => {
      await a.flush();
      await b.flush();
    },
    close: async () => {
      await a.close();
      await b.close();
    },
  };
});
