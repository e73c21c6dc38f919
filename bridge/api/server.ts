// The daemon's local HTTP/SSE API: loopback only, every request authenticated by the token file's secret.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Unpackr } from 'msgpackr';
import { AnxError, describeValue } from '../../runtime/errors.ts';
import type { EventV1 } from '../../runtime/events/event.ts';
import type { TraceFilter } from '../../runtime/events/log.ts';
import { type Host, parseKinds, RequestError, type SendRequest } from '../../runtime/host.ts';
import { jsonValueProblem, type ValueProblem, valueProblem } from '../../runtime/value-checks.ts';
import { DEFAULT_MAX_SIZE } from '../../runtime/vault/keys.ts';
import type { CardQuery } from '../relay/cards.ts';
import { localCards } from '../relay/local-cards.ts';
import type { Relay } from '../relay/relay.ts';
import { installAuthorityRoutes } from './authority-routes.ts';
import { installCollabRoutes } from './collab-routes.ts';
import { installPlaygroundRoutes, servePlayground } from './playground-routes.ts';
import { installSecretaryRoutes } from './secretary-routes.ts';
import { installTeamworkRoutes } from './teamwork-routes.ts';

export interface ApiServerOptions {
  /** Port on 127.0.0.1; 0 picks a free one. */
  port: number;
  token: string;
  /** Called when a client asks the daemon to stop (after the reply is sent). */
  onStop?: () => void;
  /** The host's relay, when it joined one: enables discovery, cards, webhooks and relay status. */
  relay?: Relay;
}

export interface ApiServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** The longest path parameter (decoded) a route takes. */
const MAX_PATH_PARAM_CHARS = 512;

/**
 * Requests that carry an artifact's content (a vault put, a worker's delivery, an Owner's takeover
 * delivery) may be as large as the vault's largest artifact sent as base64 JSON, plus room for the
 * other fields; every other request stays under `MAX_BODY_BYTES`.
 */
const ARTIFACT_BODY_BYTES = Math.ceil((DEFAULT_MAX_SIZE * 4) / 3) + 1024 * 1024;
const ARTIFACT_ROUTES = /^\/v1\/(vault\/[^/]+\/put|workers\/[^/]+\/deliver|runs\/[^/]+\/control)$/;

type Handler = (
  req: IncomingMessage,
  url: URL,
  params: string[],
  body: unknown,
) => Promise<unknown> | unknown;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

/** HTTP status for a typed error: the caller's mistakes are 4xx, everything else 500. */
function statusOf(err: AnxError): number {
  if (err.code === 'ANX_ACTOR_UNKNOWN' || err.code.endsWith('_NOT_FOUND')) return 404;
  if (
    err.code === 'ANX_RUN_REFUSED' ||
    err.code === 'ANX_TASK_NOT_RUNNING' ||
    err.code === 'ANX_VAULT_REF_MISMATCH' ||
    err.code.startsWith('ANX_DISPATCH_') ||
    err.code.endsWith('_CONFLICT') ||
    err.code.endsWith('_REPLAYED')
  )
    return 409;
  if (
    err.code === 'ANX_ARTIFACT_TOO_LARGE' ||
    err.code === 'ANX_REQUEST_TOO_LARGE' ||
    err.code === 'ANX_MESSAGE_TOO_LARGE'
  )
    return 413;
  if (
    err.code === 'ANX_VAULT_INPUT' ||
    err.code === 'ANX_TRANSFER_MISMATCH' ||
    err.code.startsWith('ANX_PLAYBOOK')
  )
    return 400;
  if (
    err.code === 'ANX_NOT_LOCAL_IDENTITY' ||
    err.code.startsWith('ANX_FORBIDDEN') ||
    err.code.startsWith('ANX_TOKEN_') ||
    err.code === 'ANX_FROZEN'
  )
    return 403;
  if (err.code === 'ANX_UNAUTHORIZED') return 401;
  if (err.code === 'ANX_RATE_LIMITED') return 429;
  if (
    err.code === 'ANX_SYSTEM_STOPPED' ||
    err.code === 'ANX_COMMIT_FAILED' ||
    err.code === 'ANX_RELAY_UNAVAILABLE' ||
    err.code === 'ANX_REVOCATION_UNAVAILABLE' ||
    err.code === 'ANX_REVOCATION_STALE'
  )
    return 503;
  if (err instanceof RequestError || err.code.endsWith('_INVALID') || err.code.startsWith('ANX_ENVELOPE'))
    return 400;
  return 500;
}

/** Starts the API on 127.0.0.1 only: it is never exposed beyond the machine. */
export async function startApiServer(host: Host, options: ApiServerOptions): Promise<ApiServer> {
  const expected = Buffer.from(options.token, 'utf8');
  const routes: Route[] = [];
  const route = (method: string, path: string, handler: Handler) =>
    routes.push({ method, pattern: new RegExp(`^${path.replace(/:\w+/g, '([^/]+)')}$`), handler });

  route('GET', '/v1/status', () => host.status());
  route('POST', '/v1/stop', () => {
    setImmediate(() => options.onStop?.());
    return { stopping: true };
  });
  route('GET', '/v1/identities', () => ({ identities: host.identities() }));
  route('GET', '/v1/identities/:did', (_req, _url, [did]) =>
    host.identity(decodeURIComponent(did as string)),
  );
  route('POST', '/v1/identities', async (_req, _url, _p, body) => {
    // No body at all asks for an unnamed identity; anything else must be {name?, reuse?}.
    const request = (body === undefined ? {} : body) as { name?: unknown; reuse?: unknown };
    const reuse = typeof request === 'object' && request !== null ? request.reuse : undefined;
    if (reuse !== undefined && reuse !== true && reuse !== false)
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"reuse" expected true or false, got ${describeValue(reuse)}`,
      );
    // With reuse, the oldest identity of that name (created if there is none, once however many ask).
    if (reuse === true) return host.identityNamed(request.name as string);
    if (reuse === undefined) return host.createIdentity(request as { name?: string });
    const { reuse: _, ...fields } = request as Record<string, unknown>;
    return host.createIdentity(fields as { name?: string });
  });
  route('POST', '/v1/messages', async (_req, _url, _p, body) => {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `request body expected {messages: [...]} or one message {from, to, body}, got ${body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body}`,
      );
    const payload = body as { messages?: SendRequest[] } | SendRequest;
    const list = Array.isArray((payload as { messages?: unknown }).messages)
      ? (payload as { messages: SendRequest[] }).messages
      : [payload as SendRequest];
    if (list.length === 0 || list.length > 10_000) {
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"messages" expected 1 to 10000 messages, got ${list.length}`,
      );
    }
    return { results: await host.send(list) };
  });
  const needRelay = (): Relay => {
    if (options.relay === undefined) {
      throw new AnxError('ANX_RELAY_UNAVAILABLE', 'this host has not joined a relay', {
        hint: 'start it with `anx-runtime start --relay nats-leaf://USER:PASS@HUB:7422` (or --nats nats://HOST:PORT)',
      });
    }
    return options.relay;
  };
  route('GET', '/v1/relay', () => needRelay().statusWithHub());
  route('GET', '/v1/presence/:did', (_req, _url, [did]) => {
    const d = decodeURIComponent(did as string);
    return { did: d, online: needRelay().isOnline(d) };
  });
  route('GET', '/v1/discover', (_req, url) => {
    const q = url.searchParams;
    const query: CardQuery = {};
    for (const name of ['capability', 'role', 'tag', 'protocol'] as const) {
      const v = q.get(name);
      if (v !== null) query[name] = v;
    }
    const minTrust = q.get('min_trust');
    if (minTrust !== null) {
      const n = Number(minTrust);
      if (!Number.isFinite(n) || n < 0 || n > 1)
        throw new RequestError(
          'ANX_REQUEST_INVALID',
          `"min_trust" expected a number from 0 to 1, got ${describeValue(minTrust)}`,
        );
      query.minTrust = n;
    }
    if (q.get('online') === '1' || q.get('online') === 'true') query.online = true;
    // Local identities' cards are listed with or without a relay; a relay adds the directory's.
    const relay = options.relay;
    return {
      cards: localCards(host).discover(
        query,
        relay === undefined
          ? {}
          : {
              // A relay without JetStream has no directory: local cards are still listed.
              remote: relay.directory === undefined ? [] : relay.discover(query),
              online: (d) => relay.isOnline(d),
            },
      ),
    };
  });
  route('POST', '/v1/cards', async (_req, _url, _p, body) => {
    const input = (body ?? {}) as Parameters<Relay['publishCard']>[0];
    const card = await localCards(host).publish(input);
    return options.relay === undefined ? card : options.relay.publishCard({ ...input, did: card.did });
  });
  route('POST', '/v1/webhooks', async (_req, _url, _p, body) => {
    const { did, url, secret } = (body ?? {}) as { did?: string; url?: string; secret?: string };
    return needRelay().registerWebhook(String(did), String(url), secret);
  });
  // A signed or sealed wire envelope (msgpack bytes, as specified in docs/protocol.md).
  route('POST', '/v1/envelopes', async (_req, _url, _p, body) => host.receive(body as Uint8Array));
  route('GET', '/v1/inbox/:did', (_req, url, [did]) =>
    host.inbox(decodeURIComponent(did as string), {
      ...optionalInt(url, 'after', 'afterSeq'),
      ...optionalInt(url, 'limit', 'limit'),
    }),
  );
  route('GET', '/v1/trace/:id', (_req, url, [id]) => ({
    id: decodeURIComponent(id as string),
    events: host.trace(decodeURIComponent(id as string), traceFilter(url)),
  }));
  installTeamworkRoutes(host, (method, path, handler) =>
    route(method, path, (_req, url, params, body) => handler(url, params, body)),
  );
  installSecretaryRoutes(
    host,
    (method, path, handler) => route(method, path, (_req, url, params, body) => handler(url, params, body)),
    options.relay,
  );
  installAuthorityRoutes(
    host,
    (method, path, handler) => route(method, path, (_req, url, params, body) => handler(url, params, body)),
    options.relay,
  );
  installPlaygroundRoutes(host, options.relay, (method, path, handler) =>
    route(method, path, (_req, url, params) => handler(url, params)),
  );
  installCollabRoutes(host, (method, path, handler) =>
    route(method, path, (_req, url, params, body) => handler(url, params, body)),
  );
  route('GET', '/v1/actors/:address', (_req, _url, [address]) => {
    const info = host.system.info(decodeURIComponent(address as string));
    if (info === undefined)
      throw new AnxError(
        'ANX_NOT_FOUND',
        `no actor at ${describeValue(decodeURIComponent(address as string))}`,
      );
    return info;
  });

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  // Clients (the CLI, SDK processes, the playground) keep a connection between calls that are often
  // seconds apart. Node's default of 5 s idle closes many of them just as the next request is being
  // written on them, which the client sees as a connection cut before the answer; a minute apart,
  // that is rare (and the client retries a read that meets it). Headers must outlast the idle time.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const streams = new Set<ServerResponse>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    try {
      // The playground page holds no data: it is served without the token and asks for it (docs/playground.md).
      if (await servePlayground(req, url, res, (server.address() as AddressInfo).port)) return;
      if (!authorized(req, url)) {
        throw new AnxError('ANX_UNAUTHORIZED', 'missing or wrong API token', {
          hint: 'send "Authorization: Bearer <token>" with the token from the data directory\'s api.token file',
        });
      }
      if (req.method === 'GET' && url.pathname === '/v1/events') {
        streamEvents(url, res);
        return;
      }
      for (const r of routes) {
        if (r.method !== req.method) continue;
        const match = r.pattern.exec(url.pathname);
        if (match === null) continue;
        // Ids, DIDs and addresses are far shorter; longer ones would not fit an LMDB key.
        const long = match.slice(1).find((p) => decodeURIComponent(p).length > MAX_PATH_PARAM_CHARS);
        if (long !== undefined)
          throw new RequestError(
            'ANX_REQUEST_INVALID',
            `a path parameter expected at most ${MAX_PATH_PARAM_CHARS} characters (an id, a DID or an address), got ${decodeURIComponent(long).length}`,
          );
        const body =
          req.method !== 'POST'
            ? undefined
            : url.pathname === '/v1/envelopes'
              ? await readBytes(req)
              : await readValue(
                  req,
                  ARTIFACT_ROUTES.test(url.pathname) ? ARTIFACT_BODY_BYTES : MAX_BODY_BYTES,
                );
        // Actors' state in memory runs ahead of its commit: a read waits for what is staged to be on
        // disk first (so what it reads from LMDB is as new as the state it reads from memory), and no
        // answer shows state that a crash could still take back.
        await host.system.whenDurable();
        await prepareTokens(host, body);
        const result = await r.handler(req, url, match.slice(1), body);
        await host.system.whenDurable();
        reply(res, 200, result);
        return;
      }
      reply(res, 404, {
        error: { code: 'ANX_NOT_FOUND', message: `no route ${req.method} ${url.pathname.slice(0, 256)}` },
      });
    } catch (err) {
      if (err instanceof AnxError) {
        reply(res, statusOf(err), { error: err.toJSON() });
      } else if (err instanceof URIError) {
        // A route decodes its path parameters: a malformed percent-escape is the caller's mistake.
        reply(res, 400, {
          error: {
            code: 'ANX_REQUEST_INVALID',
            message: `the path ${JSON.stringify(url.pathname.slice(0, 256))} has a malformed percent-escape`,
            hint: 'percent-encode path parameters as UTF-8 (encodeURIComponent)',
          },
        });
      } else {
        reply(res, 500, { error: { code: 'ANX_INTERNAL', message: (err as Error)?.message ?? String(err) } });
      }
    }
  }

  function authorized(req: IncomingMessage, url: URL): boolean {
    const header = req.headers.authorization;
    // EventSource cannot set headers: the events stream also takes the token as a query parameter.
    const presented = header?.startsWith('Bearer ')
      ? header.slice(7)
      : url.pathname === '/v1/events'
        ? url.searchParams.get('token')
        : null;
    if (presented === null || presented === undefined) return false;
    const got = Buffer.from(presented, 'utf8');
    return got.length === expected.length && timingSafeEqual(got, expected);
  }

  function streamEvents(url: URL, res: ServerResponse): void {
    const id = url.searchParams.get('id') ?? '*';
    const filter = traceFilter(url);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    // Send the headers and a first comment now: a client waits for them before it reads any event.
    res.flushHeaders();
    res.write(': connected\n\n');
    streams.add(res);
    let last = filter.afterSeq ?? 0;
    const write = (events: readonly EventV1[]) => {
      for (const event of events) {
        if (event.seq <= last) continue;
        if (id !== '*' && event.run_id !== id && event.task_id !== id && event.actor !== id) continue;
        if (filter.kinds !== undefined && !filter.kinds.includes(event.kind)) continue;
        last = event.seq;
        res.write(`id: ${event.seq}\nevent: anx\ndata: ${JSON.stringify(event)}\n\n`);
      }
    };
    const unsubscribe = host.system.events.subscribe(write);
    write(host.trace(id, { ...filter, afterSeq: last }));
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    keepAlive.unref();
    res.on('close', () => {
      clearInterval(keepAlive);
      unsubscribe();
      streams.delete(res);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new AnxError('ANX_PORT_IN_USE', `port ${options.port} on 127.0.0.1 is in use`, {
              hint: 'stop what holds it, or start with another --port (0 picks a free one)',
            })
          : err,
      );
    });
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Tokens in one body that are verified ahead of the route (more are still checked, on the main thread). */
const PREPARED_TOKENS = 16;

/**
 * Verifies the signatures of the capability tokens a request body carries (`token`, and the values
 * of `tokens`) on the verification pool's threads, so that the route's own check, where the
 * decision is made, finds them verified and the event loop is not held by Ed25519 work.
 */
async function prepareTokens(host: Host, body: unknown): Promise<void> {
  if (body === null || typeof body !== 'object' || body instanceof Uint8Array) return;
  const { token, tokens } = body as { token?: unknown; tokens?: unknown };
  const all: unknown[] = [token];
  if (tokens !== null && typeof tokens === 'object' && !Array.isArray(tokens))
    all.push(...Object.values(tokens).slice(0, PREPARED_TOKENS - 1));
  const strings = all.filter((t): t is string => typeof t === 'string');
  if (strings.length > 0) await Promise.all(strings.map((t) => host.authority.tokens.prepare(t)));
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** A request body over the route's limit (`ANX_REQUEST_TOO_LARGE`, HTTP 413). */
class RequestTooLargeError extends AnxError {
  constructor(limit: number) {
    super('ANX_REQUEST_TOO_LARGE', `request body expected at most ${limit} bytes`, {
      hint:
        limit === MAX_BODY_BYTES
          ? 'send large content as an artifact (vault put or a delivery) and pass its ref'
          : `an artifact may hold at most ${DEFAULT_MAX_SIZE} bytes; split the content into several artifacts`,
    });
  }
}

async function readBytes(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Uint8Array> {
  return new Uint8Array(await readBody(req, limit));
}

/** The request body in one Buffer (up to `limit` bytes, else `RequestTooLargeError`). */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Past the limit the rest is read and dropped (nothing is kept), so the client, still sending,
  // gets the 413 answer instead of a reset connection.
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= limit) chunks.push(chunk as Buffer);
    else chunks.length = 0;
  }
  if (size > limit) throw new RequestTooLargeError(limit);
  return Buffer.concat(chunks);
}

/**
 * The request's value: JSON, or with `content-type: application/msgpack` the same kind of value as
 * msgpack (a producer sending thousands of messages a second spends far less on either end: no
 * megabyte-long strings to build, measure and decode). Either way it must be plain JSON data.
 */
async function readValue(req: IncomingMessage, limit: number): Promise<unknown> {
  // Decoded straight from the bytes read: a body of thousands of messages is megabytes, and each
  // copy of it costs about as much as decoding it.
  const bytes = await readBody(req, limit);
  if (bytes.length === 0) return undefined;
  if (MSGPACK_TYPE.test(req.headers['content-type'] ?? '')) return readMsgpack(bytes);
  const text = bytes.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new RequestError('ANX_REQUEST_INVALID', `request body expected JSON: ${(err as Error).message}`);
  }
  // Lone surrogates can only come from \u escapes, and infinite numbers from huge literals: the text
  // says whether the walk needs to look for them; nesting is always checked.
  return checkedBody(valueProblem(body, { text: SUSPECT_TEXT.test(text) }), body);
}

const MSGPACK_TYPE = /^application\/(?:x-|vnd\.)?msgpack\s*(?:;|$)/i;

// Plain maps as objects (msgpackr renames a `__proto__` key `__proto_`), no records, and 64-bit
// integers as numbers up to 2^53 and as bigints beyond, which the JSON check below refuses rather
// than rounds ('auto' is in msgpackr 2.x, not yet in its typings).
const bodyUnpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: 'auto' as 'bigint',
});

function readMsgpack(bytes: Buffer): unknown {
  let body: unknown;
  try {
    body = bodyUnpackr.unpack(bytes);
  } catch (err) {
    // A stack overflow on absurd nesting lands here too: nothing was decoded.
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `request body expected one msgpack value: ${(err as Error).message.slice(0, 200)}`,
    );
  }
  // What JSON cannot say (bytes, timestamps, bigints, NaN) is refused with where it is; then nesting
  // and lone surrogates, as for JSON.
  const notJson = jsonValueProblem(body);
  if (notJson !== undefined)
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `request body: "${notJson.path}" expected ${notJson.expected}`,
      {
        hint: 'a msgpack body carries the same values as a JSON one: text, numbers, booleans, nil, arrays and maps',
      },
    );
  return checkedBody(valueProblem(body, { text: true }), body);
}

function checkedBody(problem: ValueProblem | undefined, body: unknown): unknown {
  if (problem !== undefined)
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `request body: "${problem.path}" expected ${problem.expected}`,
      {
        hint: 'strings are hashed and signed as UTF-8, and stored values are encoded again: send plain, finite, valid JSON',
      },
    );
  return body;
}

const SUSPECT_TEXT = /\\u[dD][89a-fA-F]|[eE][+]?\d{3}|\d{300}/;

function optionalInt(url: URL, name: string, as: string): Record<string, number> {
  const raw = url.searchParams.get(name);
  if (raw === null) return {};
  // Decimal digits only: Number('') is 0 and Number('1e3') 1000, neither what was written.
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `"${name}" expected a non-negative integer, got ${describeValue(raw)}`,
    );
  }
  return { [as]: n };
}

function optionalTime(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null) return undefined;
  const n = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (Number.isNaN(n)) {
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `"${name}" expected ms since the epoch or an ISO date, got ${describeValue(raw)}`,
    );
  }
  return n;
}

function traceFilter(url: URL): TraceFilter {
  const filter: TraceFilter = {};
  const kinds = parseKinds(url.searchParams.get('kind') ?? undefined);
  if (kinds !== undefined) filter.kinds = kinds;
  const actor = url.searchParams.get('actor');
  if (actor !== null) filter.actor = actor;
  const since = optionalTime(url, 'since');
  if (since !== undefined) filter.since = since;
  const until = optionalTime(url, 'until');
  if (until !== undefined) filter.until = until;
  const after = optionalInt(url, 'after', 'afterSeq');
  if (after.afterSeq !== undefined) filter.afterSeq = after.afterSeq;
  const limit = optionalInt(url, 'limit', 'limit');
  if (limit.limit !== undefined) filter.limit = limit.limit;
  return filter;
}
