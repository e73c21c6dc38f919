import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../bridge/api/client.ts';
import { type ApiServer, startApiServer } from '../../bridge/api/server.ts';
import { nodeSuite } from '../../runtime/crypto/index.ts';
import {
  createEnvelope,
  encodeEnvelope,
  envelopeSigningInput,
  seal,
  signEnvelope,
} from '../../runtime/envelope/index.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { Host } from '../../runtime/host.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let host: Host;
let bob: string;
const stranger = generateIdentity();
const mallory = generateIdentity();

beforeAll(async () => {
  host = await Host.open({ dataDir: tempDir() });
  bob = (await host.createIdentity({ name: 'bob' })).did;
});

afterAll(async () => {
  await host.close();
  cleanupTempDirs();
});

function signed(body: unknown, overrides: Partial<Parameters<typeof createEnvelope>[0]> = {}) {
  const env = createEnvelope({ type: 'message', from: stranger.did, to: bob, body, ...overrides });
  return signEnvelope(env, stranger.seed, nodeSuite);
}

async function refusal(bytes: Uint8Array): Promise<string> {
  const before = host.trace('host', { kinds: ['error'] }).length;
  const err = await host.receive(bytes).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isAnxError(err)).toBe(true);
  const events = host.trace('host', { kinds: ['error'] });
  expect(events).toHaveLength(before + 1);
  const payload = events.at(-1)?.payload as { code: string; bytes: number };
  expect(payload.code).toBe((err as { code: string }).code);
  // The event records the refusal, never the content.
  expect(JSON.stringify(payload)).not.toContain('secret text');
  return (err as { code: string }).code;
}

async function inboxTexts(): Promise<string[]> {
  await host.system.quiesce();
  return host.inbox(bob).messages.map((m) => (m.body as { text: string }).text);
}

describe('receiving wire envelopes', () => {
  it('accepts a signed envelope from a DID on another host into the inbox', async () => {
    const env = signed({ text: 'hello' });
    expect(await host.receive(encodeEnvelope(env))).toEqual({ id: env.id, duplicate: false });
    expect(await inboxTexts()).toEqual(['hello']);
  });

  it('opens a sealed envelope with the recipient key from the keystore', async () => {
    const env = createEnvelope({
      type: 'message',
      from: stranger.did,
      to: bob,
      body: { text: 'sealed hello' },
    });
    const sealed = seal(env, { senderSeed: stranger.seed, recipientDid: bob, suite: nodeSuite });
    await host.receive(encodeEnvelope(sealed));
    expect((await inboxTexts()).at(-1)).toBe('sealed hello');
  });

  it('refuses hostile input with typed errors and error events, keeping other mail', async () => {
    const good = encodeEnvelope(signed({ text: 'secret text' }));
    expect(await refusal(good.subarray(0, good.length - 9))).toBe('ANX_ENVELOPE_DECODE');
    expect(await refusal(new Uint8Array([0xc1, 0x00, 0xff]))).toBe('ANX_ENVELOPE_DECODE');
    expect(await refusal(new Uint8Array(2 * 1024 * 1024))).toBe('ANX_ENVELOPE_TOO_LARGE');

    const tampered = good.slice();
    const at = tampered.length - 80;
    tampered[at] = (tampered[at] as number) ^ 0x01;
    expect(['ANX_ENVELOPE_SIGNATURE', 'ANX_ENVELOPE_DECODE', 'ANX_ENVELOPE_FIELD']).toContain(
      await refusal(tampered),
    );

    // A message claiming to be from the stranger but signed by mallory.
    const forged = createEnvelope({
      type: 'message',
      from: stranger.did,
      to: bob,
      body: { text: 'secret text' },
    });
    forged.sig = nodeSuite.sign(mallory.seed, envelopeSigningInput(forged));
    expect(await refusal(encodeEnvelope(forged))).toBe('ANX_ENVELOPE_SIGNATURE');

    const stale = signed({ text: 'secret text' }, { ts: Date.now() - 60 * 60_000 });
    expect(await refusal(encodeEnvelope(stale))).toBe('ANX_ENVELOPE_REPLAY_WINDOW');
    const expired = signed({ text: 'secret text' }, { exp: Date.now() - 1 });
    expect(await refusal(encodeEnvelope(expired))).toBe('ANX_ENVELOPE_EXPIRED');

    const once = encodeEnvelope(signed({ text: 'once' }));
    await host.receive(once);
    expect(await refusal(once)).toBe('ANX_ENVELOPE_DUPLICATE');

    const unsigned = createEnvelope({
      type: 'message',
      from: stranger.did,
      to: bob,
      body: { text: 'secret text' },
    });
    expect(await refusal(encodeEnvelope(unsigned))).toBe('ANX_ENVELOPE_SIGNATURE');

    const forOther = createEnvelope({
      type: 'message',
      from: stranger.did,
      to: bob,
      body: { text: 'secret text' },
    });
    const sealedForMallory = seal(forOther, {
      senderSeed: stranger.seed,
      recipientDid: mallory.did,
      suite: nodeSuite,
    });
    sealedForMallory.to = bob;
    const resigned = signEnvelope(sealedForMallory, stranger.seed, nodeSuite);
    expect(await refusal(encodeEnvelope(resigned))).toBe('ANX_ENVELOPE_DECRYPT');

    // Every refusal left the inbox as it was; only the good messages are there.
    expect(await inboxTexts()).toEqual(['hello', 'sealed hello', 'once']);
  });

  it('maps refusals to HTTP 400 with the envelope code on the local API', async () => {
    const api: ApiServer = await startApiServer(host, { port: 0, token: 'receive-test-token-123' });
    try {
      const res = await fetch(`${api.url}/v1/envelopes`, {
        method: 'POST',
        headers: { authorization: 'Bearer receive-test-token-123', 'content-type': 'application/msgpack' },
        body: new Uint8Array([0x92, 0x01]),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ANX_ENVELOPE_DECODE');
      const env = signed({ text: 'over http' });
      const ok = await fetch(`${api.url}/v1/envelopes`, {
        method: 'POST',
        headers: { authorization: 'Bearer receive-test-token-123', 'content-type': 'application/msgpack' },
        body: encodeEnvelope(env),
      });
      expect(ok.status).toBe(200);
      const client = new ApiClient(api.url, 'receive-test-token-123');
      await host.system.quiesce();
      expect((await client.get<{ received: number }>(`/v1/inbox/${bob}`)).received).toBe(4);
    } finally {
      await api.close();
    }
  });

  it('still refuses a replayed envelope after a restart', async () => {
    const dir = tempDir();
    let h = await Host.open({ dataDir: dir });
    const carol = (await h.createIdentity()).did;
    const env = createEnvelope({ type: 'message', from: stranger.did, to: carol, body: { text: 'x' } });
    const bytes = encodeEnvelope(signEnvelope(env, stranger.seed, nodeSuite));
    await h.receive(bytes);
    await h.close();
    h = await Host.open({ dataDir: dir });
    await expect(h.receive(bytes)).rejects.toMatchObject({ code: 'ANX_ENVELOPE_DUPLICATE' });
    await h.close();
  });
});
