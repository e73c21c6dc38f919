// The topology tab: this host, the relay it joined, agents with presence, roles and trust, and the Enclaves.
import type { PlaygroundApi } from './api.ts';
import { $, h, short } from './dom.ts';

interface Topology {
  hosts: Array<{ host_id: string; self: boolean; online_dids: number; leaf: string | null }>;
  leaves: Array<{ leaf: string; hosts: number; online_dids: number; self: boolean }>;
  host: {
    version: string;
    pid: number;
    started_at: number;
    uptime_ms: number;
    actors: { live: number; timers: number };
    last_event_seq: number;
  };
  relay:
    | (Record<string, unknown> & { hostId: string; transport: string; connected: boolean; online: number })
    | null;
  agents: Array<{
    did: string;
    name: string | null;
    local: boolean;
    presence: string;
    roles: string[];
    trust: number;
  }>;
  enclaves: Array<{
    enclave_id: string;
    name: string;
    owner: string;
    state: string;
    backend: string;
    members: Array<{ did: string; role: string; permissions: string[] }>;
  }>;
}

function table(
  head: string[],
  rows: Array<Array<string | Node>>,
  attrs: Record<string, string> = {},
): HTMLElement {
  return h(
    'table',
    attrs,
    h('tr', {}, ...head.map((c) => h('th', {}, c))),
    ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c)))),
  );
}

export class TopologyView {
  constructor(private readonly api: PlaygroundApi) {}

  async load(): Promise<void> {
    const t = await this.api.get<Topology>('/v1/playground/topology');
    const names = new Map(t.agents.map((a) => [a.did, a.name ?? short(a.did)]));
    const hostCard = h(
      'div',
      { class: 'card host' },
      h('h3', {}, `Host ${t.relay?.hostId ?? '(local only)'}`),
      table(
        ['', ''],
        [
          ['version', t.host.version],
          ['pid', String(t.host.pid)],
          ['up since', new Date(t.host.started_at).toISOString()],
          ['live actors', String(t.host.actors.live)],
          ['pending timers', String(t.host.actors.timers)],
          ['last event', `#${t.host.last_event_seq}`],
          [
            'relay',
            t.relay === null
              ? 'not joined (start with --relay or --nats)'
              : `${t.relay.transport}, ${t.relay.connected ? 'connected' : 'disconnected'}, ${t.relay.online} DIDs online`,
          ],
        ],
      ),
    );
    const hosts = h(
      'div',
      { class: 'card' },
      h('h3', {}, `Hosts on the relay (${t.hosts.length})`),
      t.hosts.length === 0
        ? h(
            'p',
            { class: 'muted' },
            t.relay === null ? 'this host has not joined a relay' : 'no host has announced DIDs yet',
          )
        : table(
            ['host', 'relay server', 'DIDs online'],
            t.hosts.map((x) => [
              h('code', { title: x.host_id }, `${short(x.host_id)}${x.self ? ' (this host)' : ''}`),
              x.leaf ?? '',
              String(x.online_dids),
            ]),
            { id: 'topology-hosts' },
          ),
    );
    const leaves = h(
      'div',
      { class: 'card' },
      h('h3', {}, `Relay servers: leaves and hub (${t.leaves.length})`),
      t.leaves.length === 0
        ? h('p', { class: 'muted' }, 'no relay server known (in-process transport, or not joined)')
        : table(
            ['server', 'hosts', 'DIDs online'],
            t.leaves.map((l) => [
              `${l.leaf}${l.self ? ' (this host’s)' : ''}`,
              String(l.hosts),
              String(l.online_dids),
            ]),
            { id: 'topology-leaves' },
          ),
    );
    const agents = h(
      'div',
      { class: 'card' },
      h('h3', {}, `Agents (${t.agents.length})`),
      table(
        ['name', 'DID', 'where', 'presence', 'roles', 'trust'],
        t.agents.map((a) => [
          a.name ?? '',
          h('code', { title: a.did }, short(a.did)),
          a.local ? 'this host' : 'remote',
          h('span', { class: `presence ${a.presence}` }, a.presence),
          a.roles.join(', '),
          a.trust.toFixed(2),
        ]),
        { id: 'topology-agents' },
      ),
    );
    const enclaves = t.enclaves.map((e) =>
      h(
        'div',
        { class: 'card' },
        h('h3', {}, `Enclave ${e.name} (${e.enclave_id}) · ${e.state} · vault ${e.backend}`),
        table(
          ['member', 'role', 'permissions'],
          e.members.map((m) => [
            h(
              'span',
              { title: m.did },
              `${names.get(m.did) ?? short(m.did)}${m.did === e.owner ? ' (owner)' : ''}`,
            ),
            m.role,
            m.permissions.join(', '),
          ]),
        ),
      ),
    );
    $('topology').replaceChildren(hostCard, hosts, leaves, agents, ...enclaves);
  }
}
