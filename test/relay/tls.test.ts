// TLS on the hub's leafnode port: `relay start --tls-cert/--tls-key` prints a tls:// join URL; a leaf
// that trusts the hub's CA joins, one that trusts another CA does not; --relay-ca needs a tls:// URL.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, expect, it } from 'vitest';
import { joinRelay } from '../../bridge/relay/join.ts';
import { leafConfig, NatsServer, parseLeafUrl } from '../../bridge/relay/nats-server.ts';
import { type AnxError, isAnxError } from '../../runtime/errors.ts';
import { CLI } from '../helpers/daemon.ts';
import { freePort, hostLogin, relayStartSync, startRelayCli } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const started: NatsServer[] = [];

afterAll(async () => {
  for (const s of started) await s.stop();
  cleanupTempDirs();
});

function openssl(args: string[], cwd: string): void {
  const run = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`openssl ${args[0]} failed: ${run.stderr}`);
}

/** A CA and, optionally, a certificate it signs for 127.0.0.1. */
function makeCa(
  dir: string,
  name: string,
  withServerCert: boolean,
): { ca: string; cert: string; key: string } {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      `${name}-ca.key`,
      '-out',
      `${name}-ca.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=${name} CA`,
    ],
    dir,
  );
  if (withServerCert) {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=127.0.0.1'], dir);
    writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${name}-ca.crt`,
        '-CAkey',
        `${name}-ca.key`,
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-extfile',
        'san.cnf',
      ],
      dir,
    );
  }
  return { ca: join(dir, `${name}-ca.crt`), cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

async function leafWith(
  hub: string,
  credentials: { user: string; password: string },
  caFile: string,
  timeoutMs: number,
) {
  const [port, httpPort] = [await freePort(), await freePort()];
  const leaf = new NatsServer({
    dir: tempDir('anx-tls-leaf-'),
    name: 'leaf.conf',
    port,
    httpPort,
    waitForLeaf: true,
    config: leafConfig({ port, httpPort, hub, credentials, tls: { caFile } }),
  });
  started.push(leaf);
  await leaf.start({ timeoutMs });
  return leaf;
}

it('runs a hub with TLS on its leafnode port that only leaves trusting its CA can join', async () => {
  const certs = tempDir('anx-tls-');
  const hubCerts = makeCa(certs, 'hub', true);
  const other = makeCa(certs, 'other', false);
  const relay = await startRelayCli(['--tls-cert', hubCerts.cert, '--tls-key', hubCerts.key]);
  try {
    const { info } = relay;
    expect(info.tls).toBe(true);
    expect(info.join).toMatch(/^tls:\/\/anx-leaf:/);
    const { hub, credentials, tls } = parseLeafUrl(info.join);
    expect(tls).toBe(true);

    // Trusting the hub's CA: the leaf joins, and traffic crosses leaf → hub.
    const leaf = await leafWith(hub, credentials, hubCerts.ca, 20_000);
    const [atLeaf, atHub] = [
      await connect({ servers: leaf.url }),
      await connect({ servers: info.clientUrl, ...hostLogin(info.join) }),
    ];
    const got: string[] = [];
    atHub.subscribe('anx.tls.test', { callback: (_e, m) => void got.push(m.string()) });
    await atHub.flush();
    for (let i = 0; i < 100 && got.length === 0; i++) {
      atLeaf.publish('anx.tls.test', 'over tls');
      await atLeaf.flush();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(got[0]).toBe('over tls');
    await atLeaf.close();
    await atHub.close();

    // Trusting another CA: the TLS handshake fails and the leaf never links.
    await expect(leafWith(hub, credentials, other.ca, 4_000)).rejects.toThrow(/did not become ready/);
    // A host joining with that CA is told why, instead of running without its hub.
    const refused = await joinRelay({
      dataDir: tempDir(),
      relayUrl: info.join,
      relayCa: other.ca,
      leafPort: 0,
    }).catch((e: unknown) => e);
    expect(isAnxError(refused) && refused.code).toBe('ANX_RELAY_REFUSED');
    expect((refused as Error).message).toMatch(/TLS handshake failed: .*unknown authority/);
    expect((refused as AnxError).hint).toMatch(/--relay-ca/);
  } finally {
    await relay.stop();
  }
}, 90_000);

it('refuses half a TLS pair for a hub, and --relay-ca with a plain relay URL', () => {
  const half = relayStartSync('--port', '0', '--leaf-port', '0', '--tls-cert', 'x.crt');
  expect(half.status).toBe(2);
  expect(half.stderr).toMatch(/--tls-cert and --tls-key together/);
  // A CA file that can be read: what is refused is its use with a plain URL.
  const ca = join(tempDir(), 'ca.crt');
  writeFileSync(ca, 'not checked before the URL\n');
  const plain = spawnSync(
    process.execPath,
    [
      CLI,
      '--data-dir',
      tempDir(),
      'start',
      '--port',
      '0',
      '--relay',
      'nats-leaf://u:p@127.0.0.1:7422',
      '--relay-ca',
      ca,
    ],
    { encoding: 'utf8' },
  );
  expect(plain.status).toBe(2);
  expect(plain.stderr).toMatch(/--relay-ca expected a tls:\/\/ relay URL/);
});
