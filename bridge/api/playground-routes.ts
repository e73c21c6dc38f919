// The playground's side of the local API: the page itself (bundled once, in memory) and the JSON it draws from.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { DID_KIND } from '../../actors/did.ts';
import { DISCUSSION_KIND } from '../../actors/discussions.ts';
import { ENCLAVE_KIND } from '../../actors/enclave.ts';
import { RUN_KIND_PREFIX, runAddress } from '../../actors/playbook-run.ts';
import { SECRETARY_KIND } from '../../actors/secretary.ts';
import { TASK_KIND } from '../../actors/tasks.ts';
import { compilePlaybook } from '../../machines/playbook/compile.ts';
import { playbookTemplate, TEMPLATE_NAMES, type TemplateName } from '../../machines/playbook/templates.ts';
import { type MachineGraph, machineGraph, type StateNodeLike } from '../../playground/src/graph.ts';
import { AnxError, describeValue } from '../../runtime/errors.ts';
import { type Host, RequestError } from '../../runtime/host.ts';
import type { Relay } from '../relay/relay.ts';

const PAGE_DIR = fileURLToPath(new URL('../../playground/', import.meta.url));

/** The page may load only what it is served from here, and talk only to this origin. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

let bundle: Promise<string> | undefined;

/** The page's script: `playground/app.ts` and its imports bundled by esbuild on first request, then kept. */
export function playgroundBundle(): Promise<string> {
  bundle ??= (async () => {
    const esbuild = await import('esbuild');
    const result = await esbuild.build({
      entryPoints: [`${PAGE_DIR}src/app.ts`],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'chrome110',
      minify: true,
      sourcemap: false,
      legalComments: 'none',
      logLevel: 'silent',
    });
    return result.outputFiles[0]?.text ?? '';
  })().catch((err: unknown) => {
    bundle = undefined;
    throw new AnxError(
      'ANX_PLAYGROUND_BUILD',
      `the playground page did not build: ${(err as Error).message}`,
      {
        hint: 'run `npm install` in the package directory (it installs esbuild), then reload',
      },
    );
  });
  return bundle;
}

/** The loopback names the page answers to: a page fetched under any other Host is a rebinding attempt. */
function loopbackHost(req: IncomingMessage, port: number): boolean {
  const host = req.headers.host ?? '';
  return host === `127.0.0.1:${port}` || host === `localhost:${port}` || host === `[::1]:${port}`;
}

/**
 * Serves the page at `/playground/` without a token: the page and its script hold no data and no
 * secret; everything it shows comes from token-authenticated API requests. Returns false when the
 * request is not for the page.
 */
export async function servePlayground(
  req: IncomingMessage,
  url: URL,
  res: ServerResponse,
  port: number,
): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const path = url.pathname;
  if (path !== '/playground' && !path.startsWith('/playground/')) return false;
  const send = (status: number, type: string, body: string, extra: Record<string, string> = {}) => {
    res.writeHead(status, {
      ...PAGE_HEADERS,
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      ...extra,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (!loopbackHost(req, port)) {
    send(421, 'text/plain; charset=utf-8', 'the playground answers on 127.0.0.1 or localhost only\n');
    return true;
  }
  if (path === '/playground') {
    send(308, 'text/plain; charset=utf-8', '', { location: `/playground/${url.search}` });
    return true;
  }
  const file = path.slice('/playground/'.length);
  try {
    if (file === '' || file === 'index.html') {
      send(200, 'text/html; charset=utf-8', readFileSync(`${PAGE_DIR}index.html`, 'utf8'));
    } else if (file === 'style.css') {
      send(200, 'text/css; charset=utf-8', readFileSync(`${PAGE_DIR}style.css`, 'utf8'));
    } else if (file === 'app.js') {
      send(200, 'text/javascript; charset=utf-8', await playgroundBundle());
    } else {
      send(404, 'text/plain; charset=utf-8', `no playground file ${file}\n`);
    }
  } catch (err) {
    const e = err instanceof AnxError ? err : new AnxError('ANX_INTERNAL', (err as Error).message);
    send(500, 'text/plain; charset=utf-8', `${e.message}\n${e.hint ?? ''}\n`);
  }
  return true;
}

export type PlaygroundRoute = (
  method: 'GET',
  path: string,
  handler: (url: URL, params: string[]) => unknown,
) => void;

/** The fixed machine kinds a host may register, in the order the page lists them. */
const BUILTIN_KINDS: ReadonlyArray<readonly [string, string]> = [
  [DID_KIND, 'DID'],
  [SECRETARY_KIND, 'Secretary'],
  [ENCLAVE_KIND, 'Enclave'],
  [TASK_KIND, 'Task'],
  [DISCUSSION_KIND, 'Discussion'],
];

/** Actors of one kind (other than runs, Enclaves and local DIDs) offered to follow. */
const MAX_ACTORS_PER_KIND = 200;

/** A machine the page can draw, without its graph. */
export interface MachineEntry {
  kind: string;
  title: string;
  version: number;
  /** `builtin` (DID, Enclave), `template` (a playbook template compiled), `run` (a compiled playbook runs use). */
  source: 'builtin' | 'template' | 'run';
  runs: string[];
}

/** The JSON routes of the page: machines as graphs, actors to follow, the topology. */
export function installPlaygroundRoutes(host: Host, relay: Relay | undefined, route: PlaygroundRoute): void {
  const t = host.teamwork;
  const graphs = new Map<string, MachineGraph>();
  const dec = (s: string | undefined) => decodeURIComponent(s ?? '');

  const machines = (): MachineEntry[] => {
    const out: MachineEntry[] = [];
    for (const [kind, title] of BUILTIN_KINDS) {
      const def = host.system.machine(kind);
      if (def !== undefined) out.push({ kind, title, version: def.version, source: 'builtin', runs: [] });
    }
    for (const name of TEMPLATE_NAMES) {
      const def = playbookTemplate(name);
      out.push({
        kind: `template/${name}`,
        title: `Playbook template ${name}@${def.version}`,
        version: 1,
        source: 'template',
        runs: [],
      });
    }
    const byHash = new Map<string, MachineEntry>();
    for (const run of t.runs.list()) {
      let entry = byHash.get(run.hash);
      if (entry === undefined) {
        const def = t.runs.definition(run.hash);
        entry = {
          kind: RUN_KIND_PREFIX + run.hash,
          title: `Playbook ${def?.name ?? '?'}@${def?.version ?? '?'} (${run.hash.slice(0, 12)})`,
          version: host.system.machine(RUN_KIND_PREFIX + run.hash)?.version ?? 0,
          source: 'run',
          runs: [],
        };
        byHash.set(run.hash, entry);
        out.push(entry);
      }
      entry.runs.push(run.run_id);
    }
    return out;
  };

  const graphOf = (kind: string): MachineGraph => {
    const known = graphs.get(kind);
    if (known !== undefined) return known;
    let root: StateNodeLike;
    let title: string;
    let version: number;
    if (kind.startsWith('template/')) {
      const name = kind.slice('template/'.length);
      if (!(TEMPLATE_NAMES as readonly string[]).includes(name))
        throw new RequestError(
          'ANX_REQUEST_INVALID',
          `"kind" expected template/${TEMPLATE_NAMES.join(', template/')}, got ${describeValue(kind)}`,
        );
      const def = playbookTemplate(name as TemplateName);
      root = compilePlaybook(def).root as unknown as StateNodeLike;
      title = `Playbook template ${name}@${def.version}`;
      version = 1;
    } else {
      const def = host.system.machine(kind);
      if (def === undefined)
        throw new AnxError(
          'ANX_MACHINE_NOT_FOUND',
          `this host knows no machine of kind ${JSON.stringify(kind)}`,
          {
            hint: 'list the machines with GET /v1/playground/machines',
          },
        );
      root = def.machine.root as unknown as StateNodeLike;
      title = machines().find((m) => m.kind === kind)?.title ?? kind;
      version = def.version;
    }
    const graph = machineGraph(root, { kind, title, version });
    graphs.set(kind, graph);
    return graph;
  };

  route('GET', '/v1/playground/machines', () => ({ machines: machines() }));
  route('GET', '/v1/playground/machines/:kind', (_url, [kind]) => graphOf(dec(kind)));

  // Actors the page can follow live: runs first (newest first), then Enclaves and local DIDs.
  route('GET', '/v1/playground/actors', () => {
    const runs = t.runs
      .list()
      .reverse()
      .map((r) => {
        const info = host.system.info(runAddress(r.run_id));
        return {
          address: runAddress(r.run_id),
          kind: RUN_KIND_PREFIX + r.hash,
          label: r.run_id,
          run_id: r.run_id,
          value: info?.value ?? null,
          created_at: r.created_at,
        };
      });
    const enclaves = t.enclaves.list().map((id) => {
      const address = `enclave/${id}`;
      return { address, kind: ENCLAVE_KIND, label: address, value: host.system.info(address)?.value ?? null };
    });
    // Secretaries, tasks and discussions: the most recent few of each kind this host holds.
    const others = BUILTIN_KINDS.filter(([kind]) => kind !== DID_KIND && kind !== ENCLAVE_KIND).flatMap(
      ([kind, title]) => {
        const found: Array<{ address: string; kind: string; label: string; value: unknown }> = [];
        if (host.system.machine(kind) === undefined) return found;
        for (const address of host.system.addresses(kind)) {
          found.push({
            address,
            kind,
            label: `${title.toLowerCase()} ${address}`,
            value: host.system.info(address)?.value ?? null,
          });
          if (found.length >= MAX_ACTORS_PER_KIND) break;
        }
        return found;
      },
    );
    const dids = host.keystore.list().map((k) => ({
      address: k.did,
      kind: DID_KIND,
      label: k.name === null || k.name === undefined ? k.did : `${k.name} ${k.did}`,
      value: host.system.info(k.did)?.value ?? null,
    }));
    return { actors: [...runs, ...enclaves, ...others, ...dids] };
  });

  route('GET', '/v1/playground/actors/:address', (_url, [address]) => {
    const a = dec(address);
    const info = host.system.info(a);
    if (info === undefined) throw new AnxError('ANX_ACTOR_UNKNOWN', `no actor at ${describeValue(a)}`);
    return info;
  });

  // Hosts, leaves and agents: this host, the relay it joined (if any), local identities with their roles
  // in Enclaves, and the signed cards of agents elsewhere with presence and trust.
  route('GET', '/v1/playground/topology', () => {
    const status = host.status();
    const roles = new Map<string, Set<string>>();
    const enclaves = t.enclaves.list().map((id) => {
      const e = t.enclaves.get(id);
      for (const [did, m] of Object.entries(e.members)) {
        const set = roles.get(did) ?? new Set<string>();
        set.add(m.role);
        roles.set(did, set);
      }
      return {
        enclave_id: e.enclave_id,
        name: e.name,
        owner: e.owner,
        state: e.state,
        backend: e.backend,
        members: Object.entries(e.members).map(([did, m]) => ({
          did,
          role: m.role,
          permissions: m.permissions,
        })),
      };
    });
    const cards = relay === undefined ? [] : relay.discover({});
    const cardOf = new Map(cards.map((c) => [c.did, c]));
    const local = host.identities().map((i) => {
      const card = cardOf.get(i.did);
      return {
        did: i.did,
        name: i.name,
        local: true,
        presence: relay === undefined ? i.presence : relay.isOnline(i.did) ? 'online' : 'offline',
        roles: [...new Set([...(roles.get(i.did) ?? []), ...(card?.roles ?? [])])].sort(),
        trust: card?.trust ?? 0.5,
        unread: i.unread,
      };
    });
    const localDids = new Set(local.map((a) => a.did));
    const remote = cards
      .filter((c) => !localDids.has(c.did))
      .map((c) => ({
        did: c.did,
        name: c.name,
        local: false,
        presence: c.online ? 'online' : 'offline',
        host: relay?.presence.hostOf(c.did) ?? null,
        roles: c.roles,
        trust: c.trust,
        capabilities: c.capabilities,
      }));
    // Hosts on the relay (this one, and every other host whose heartbeat announces online DIDs), each
    // with the relay server it is connected through, and those servers (leaves, or the hub) with their hosts.
    const hosts: Array<{ host_id: string; self: boolean; online_dids: number; leaf: string | null }> = [];
    if (relay !== undefined) {
      const own = host.keystore.list().filter((k) => relay.isOnline(k.did)).length;
      hosts.push({ host_id: relay.presenceId, self: true, online_dids: own, leaf: relay.server ?? null });
      for (const other of relay.presence.onlineHosts()) {
        if (other.host === relay.presenceId) continue;
        hosts.push({ host_id: other.host, self: false, online_dids: other.dids, leaf: other.leaf ?? null });
      }
    }
    const leafMap = new Map<string, { leaf: string; hosts: number; online_dids: number; self: boolean }>();
    for (const h of hosts) {
      if (h.leaf === null) continue;
      const entry = leafMap.get(h.leaf) ?? { leaf: h.leaf, hosts: 0, online_dids: 0, self: false };
      entry.hosts++;
      entry.online_dids += h.online_dids;
      entry.self ||= h.self;
      leafMap.set(h.leaf, entry);
    }
    const leaves = [...leafMap.values()];
    return {
      hosts,
      leaves,
      host: {
        version: status.version,
        pid: status.pid,
        started_at: status.startedAt,
        uptime_ms: status.uptimeMs,
        actors: status.actors,
        last_event_seq: status.lastEventSeq,
      },
      relay: relay === undefined ? null : relay.status(),
      agents: [...local, ...remote],
      enclaves,
    };
  });
}

/**
 * The link `anx-runtime playground` prints: the page on the daemon's loopback address, with the token
 * in the fragment (`#token=…`), which browsers never send to the server; the page moves it into the
 * tab's session storage and drops it from the address bar.
 */
export function playgroundUrl(apiUrl: string, token: string, runId?: string): string {
  const fragment = new URLSearchParams({ token });
  if (runId !== undefined) fragment.set('run', runId);
  return `${apiUrl}/playground/#${fragment}`;
}
