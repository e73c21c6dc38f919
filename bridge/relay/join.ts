// Joining the relay from a host: start and supervise a local leaf (`--relay`) or use an existing NATS server (`--nats`).
import { join, resolve } from 'node:path';
import { AnxError, describeValue } from '../../runtime/errors.ts';
import {
  connectHost,
  freeLoopbackPort,
  leafConfig,
  NatsServer,
  natsUrlOf,
  parseLeafUrl,
  portOpen,
} from './nats-server.ts';
import { NatsTransport } from './nats-transport.ts';
import { Relay, type RelayOptions } from './relay.ts';

export interface JoinOptions {
  dataDir: string;
  /** `nats-leaf://user:pass@hub:7422`: start a local leaf joined to that hub. */
  relayUrl?: string;
  /** `nats://host:port`: use this NATS server (a leaf shared by several hosts, or the hub itself). */
  natsUrl?: string;
  /** PEM file of the CA that signed the hub's certificate, for a `tls://` relay URL with a private CA. */
  relayCa?: string;
  /** Client port of the local leaf (default 4223; 0 picks a free one). */
  leafPort?: number;
  /** Address the local leaf's client port binds (default 127.0.0.1; a LAN address lets other hosts share it). */
  leafHost?: string;
  heartbeatMs?: number;
  relay?: Omit<RelayOptions, 'transport' | 'nc'>;
}

export interface RelayConnection {
  relay: Relay;
  transport: NatsTransport;
  /** The supervised local leaf, when `relayUrl` started one. */
  leaf: NatsServer | undefined;
  /** The NATS URL the host uses. */
  url: string;
  close(): Promise<void>;
}

/**
 * Connects a host to the relay. With `relayUrl` a leaf `nats-server` is configured under
 * `<dataDir>/relay/leaf.conf` and supervised (restarted if it dies); when its port already serves
 * (another host of this machine started it), that leaf is shared.
 *
 * @example
 * ```ts
 * const conn = await joinRelay({ dataDir, relayUrl: 'nats-leaf://anx-leaf:secret@hub.example.org:7422' });
 * const host = await Host.open({ dataDir, router: conn.relay });
 * conn.relay.bind(host);
 * await conn.relay.start();
 * ```
 */
export async function joinRelay(options: JoinOptions): Promise<RelayConnection> {
  if ((options.relayUrl === undefined) === (options.natsUrl === undefined)) {
    throw new AnxError('ANX_ARGUMENT_INVALID', 'joining the relay expected exactly one of --relay or --nats');
  }
  let leaf: NatsServer | undefined;
  let url: string;
  if (options.relayUrl !== undefined) {
    const { hub, credentials, tls } = parseLeafUrl(options.relayUrl);
    if (options.relayCa !== undefined && !tls)
      throw new AnxError('ANX_ARGUMENT_INVALID', '--relay-ca expected a tls:// relay URL, got nats-leaf://', {
        hint: 'a hub started with --tls-cert prints a tls:// join URL',
      });
    const port = options.leafPort === 0 ? await freeLoopbackPort() : (options.leafPort ?? 4223);
    // A leaf bound to one LAN address is reached there, not on loopback.
    url = natsUrlOf(options.leafHost, port);
    if (!(await portOpen(port, connectHost(options.leafHost)))) {
      leaf = new NatsServer({
        dir: join(options.dataDir, 'relay'),
        name: 'leaf.conf',
        port,
        ...(options.leafHost === undefined ? {} : { host: options.leafHost }),
        config: leafConfig({
          port,
          hub,
          credentials,
          ...(tls ? { tls: options.relayCa === undefined ? {} : { caFile: resolve(options.relayCa) } } : {}),
          ...(options.leafHost === undefined ? {} : { clientHost: options.leafHost }),
        }),
      });
      await leaf.start({ supervise: true });
    }
  } else {
    url = options.natsUrl as string;
    if (!/^(nats|tls):\/\//.test(url))
      throw new AnxError(
        'ANX_ARGUMENT_INVALID',
        `--nats expected nats://HOST:PORT, got ${describeValue(url)}`,
      );
  }
  let transport: NatsTransport;
  try {
    transport = await NatsTransport.connect({ servers: url, name: `anx-runtime ${options.dataDir}` });
  } catch (err) {
    await leaf?.stop();
    throw err;
  }
  const relay = new Relay({
    ...options.relay,
    transport,
    nc: transport.nc,
    ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
  });
  return {
    relay,
    transport,
    leaf,
    url,
    close: async () => {
      await relay.close();
      await leaf?.stop();
    },
  };
}
