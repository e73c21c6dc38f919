// The playground page: statecharts with the live actor highlighted, replay, the timeline, topology, the vault and run controls.
import type { EventV1 } from '../../runtime/events/event.ts';
import { ApiError, forgetToken, PlaygroundApi, saveToken, takeToken } from './api.ts';
import { $, h, input, select, setOptions, short, showError, whenUnauthorized } from './dom.ts';
import { activeStateIds, type MachineGraph } from './graph.ts';
import { type DrawnGraph, drawGraph } from './render-graph.ts';
import { type ReplayStep, replaySteps } from './replay.ts';
import { TimelineView } from './timeline-view.ts';
import { TopologyView } from './topology-view.ts';
import { VaultView } from './vault-view.ts';

interface MachineEntry {
  kind: string;
  title: string;
  source: string;
  runs: string[];
}

interface ActorEntry {
  address: string;
  kind: string;
  label: string;
  run_id?: string;
  value: unknown;
}

interface StageExecution {
  stage: string;
  worker: string | null;
  status: string;
  retry_count: number;
}

interface RunStatus {
  run_id: string;
  state: string;
  value: unknown;
  owner: string;
  enclave_id: string | null;
  current: string | null;
  playbook: { name: string; version: string; hash: string };
  stages: StageExecution[];
  takeover: { stage: string; reason: string } | null;
  end_reason: string | null;
}

class Playground {
  /** Members of the Enclave of the run shown, for Reassign. */
  private members:
    | { enclave: string; members: Record<string, { role: string; permissions: string[] }> }
    | undefined;
  private machines: MachineEntry[] = [];
  private actors: ActorEntry[] = [];
  private drawn: DrawnGraph | undefined;
  private graph: MachineGraph | undefined;
  /** Bumped by every `showMachine`: a graph that arrives after another was asked for is not drawn. */
  private machineAsked = 0;
  private zoom = 1;
  private followed: ActorEntry | undefined;
  private run: RunStatus | undefined;
  private steps: ReplayStep[] = [];
  private replaying = false;
  private refreshing = false;
  private refreshAgain = false;
  private actorsDirty = false;
  readonly timeline: TimelineView;
  private readonly topology: TopologyView;
  private readonly vault: VaultView;

  constructor(private readonly api: PlaygroundApi) {
    this.timeline = new TimelineView(api);
    this.topology = new TopologyView(api);
    this.vault = new VaultView(api);
  }

  async start(): Promise<void> {
    const status = await this.api.get<{ version: string; pid: number; lastEventSeq: number }>('/v1/status');
    $('host-info').textContent = `host ${status.version} · pid ${status.pid}`;
    this.api.events(
      { after: status.lastEventSeq },
      (events) => this.onEvents(events),
      (up) => {
        $('conn').textContent = up ? 'live' : 'offline';
        $('conn').className = `conn ${up ? 'on' : 'off'}`;
      },
      () => showError(new ApiError(401, 'ANX_UNAUTHORIZED', 'the daemon refused the token')),
    );
    this.wireTabs();
    this.wireStatechart();
    await this.loadMachines();
    await this.loadActors();
    // Deep links: #run=<id> follows that run and opens its timeline.
    const params = new URLSearchParams(location.hash.replace(/^#/, ''));
    const run = params.get('run');
    // A deep link to a run that is not here says so, and the page keeps working.
    if (run !== null) await this.follow(`run/${run}`).catch(showError);
    // Presence changes without events on this host: the topology, while shown, is read again every few seconds.
    setInterval(() => {
      if (!$('tab-topology').hidden) void this.topology.load().catch(showError);
    }, 3000);
    setInterval(() => {
      if (this.actorsDirty) {
        this.actorsDirty = false;
        void this.loadActors().catch(showError);
      }
    }, 2000);
  }

  private wireTabs(): void {
    for (const tab of Array.from($('tabs').querySelectorAll<HTMLButtonElement>('button[data-tab]'))) {
      tab.addEventListener('click', () => this.showTab(tab.dataset['tab'] as string));
    }
  }

  showTab(name: string): void {
    for (const tab of Array.from($('tabs').querySelectorAll<HTMLButtonElement>('button[data-tab]')))
      tab.setAttribute('aria-selected', String(tab.dataset['tab'] === name));
    for (const section of Array.from(document.querySelectorAll<HTMLElement>('section.tab')))
      section.hidden = section.id !== `tab-${name}`;
    if (name === 'topology') void this.topology.load().catch(showError);
    if (name === 'vault')
      void this.vault.load(this.run?.enclave_id ?? undefined, this.run?.run_id).catch(showError);
    if (name === 'timeline') {
      if (this.timeline.id === '' && this.run !== undefined)
        void this.timeline.load(this.run.run_id).catch(showError);
      else this.timeline.shown();
    }
  }

  private wireStatechart(): void {
    select('machine-select').addEventListener('change', () => {
      void this.showMachine(select('machine-select').value).catch(showError);
    });
    select('actor-select').addEventListener('change', () => {
      void this.follow(select('actor-select').value).catch(showError);
    });
    input('labels-all').addEventListener('change', () => this.updateFocus());
    $('zoom-in').addEventListener('click', () => this.setZoom(this.zoom * 1.25));
    $('zoom-out').addEventListener('click', () => this.setZoom(this.zoom / 1.25));
    const range = input('replay-range');
    range.addEventListener('input', () => this.showStep(Number(range.value)));
    $('replay-first').addEventListener('click', () => this.showStep(0));
    $('replay-prev').addEventListener('click', () => this.showStep(Number(range.value) - 1));
    $('replay-next').addEventListener('click', () => this.showStep(Number(range.value) + 1));
    $('replay-live').addEventListener('click', () => {
      this.replaying = false;
      void this.refreshFollowed();
    });
    for (const action of ['pause', 'resume', 'abort', 'skip']) {
      $(`ctl-${action}`).addEventListener('click', () => void this.control(action));
    }
    $('ctl-reassign').addEventListener(
      'click',
      () => void this.control('reassign', { worker: select('ctl-worker').value }),
    );
    $('ctl-deliver').addEventListener('click', () => {
      const content = ($('ctl-content') as HTMLTextAreaElement).value;
      if (content.trim() === '' && !confirm('Deliver an empty artifact as the output of this stage?')) return;
      void this.control('deliver', { content });
    });
  }

  private setZoom(zoom: number): void {
    this.zoom = Math.min(3, Math.max(0.3, zoom));
    this.drawn?.setZoom(this.zoom);
  }

  async loadMachines(): Promise<void> {
    const { machines } = await this.api.get<{ machines: MachineEntry[] }>('/v1/playground/machines');
    this.machines = machines;
    setOptions(
      select('machine-select'),
      machines.map((m) => ({
        value: m.kind,
        label: m.runs.length > 0 ? `${m.title} · ${m.runs.length} run(s)` : m.title,
      })),
    );
    if (this.graph === undefined) {
      const first =
        machines.find((m) => m.source === 'run') ??
        machines.find((m) => m.source === 'template') ??
        machines[0];
      if (first !== undefined) await this.showMachine(first.kind);
    }
  }

  async loadActors(): Promise<void> {
    const { actors } = await this.api.get<{ actors: ActorEntry[] }>('/v1/playground/actors');
    this.actors = actors;
    setOptions(select('actor-select'), [
      { value: '', label: '(none)' },
      ...actors.map((a) => ({
        value: a.address,
        label: a.run_id !== undefined ? `run ${a.label} — ${stateName(a.value)}` : a.label,
      })),
    ]);
    if (actors.some((a) => a.run_id !== undefined && !this.machines.some((m) => m.kind === a.kind)))
      await this.loadMachines();
  }

  async showMachine(kind: string): Promise<void> {
    const asked = ++this.machineAsked;
    if (this.graph?.kind === kind) return;
    const graph = await this.api.get<MachineGraph>(`/v1/playground/machines/${encodeURIComponent(kind)}`);
    // Another machine was asked for meanwhile (another actor followed, another kind picked): it is drawn instead.
    if (asked !== this.machineAsked) return;
    this.graph = graph;
    select('machine-select').value = kind;
    this.drawn = drawGraph(graph);
    this.drawn.setZoom(this.zoom);
    $('graph').replaceChildren(this.drawn.svg);
    $('graph').dataset['kind'] = kind;
    this.highlightCurrent();
  }

  /** Follows an actor: draws its machine and highlights its state as it changes. */
  async follow(address: string): Promise<void> {
    select('actor-select').value = address;
    this.replaying = false;
    this.run = undefined;
    this.steps = [];
    if (address === '') {
      this.followed = undefined;
      this.renderActorPanel();
      this.drawn?.highlight([]);
      return;
    }
    let actor = this.actors.find((a) => a.address === address);
    if (actor === undefined) {
      await this.loadActors();
      actor = this.actors.find((a) => a.address === address);
    }
    if (actor === undefined) throw new Error(`no actor ${address} on this host`);
    this.followed = actor;
    select('actor-select').value = address;
    await this.showMachine(actor.kind);
    // Each step waits for the host: once another actor is followed, this one's steps stop.
    if (this.followed !== actor) return;
    await this.refreshFollowed();
    if (this.followed !== actor) return;
    if (actor.run_id !== undefined) {
      await this.timeline.load(actor.run_id);
      if (this.followed !== actor) return;
      this.prepareReplay();
    }
  }

  /** Re-reads the followed actor's state (one request at a time; a change meanwhile asks for one more). */
  private async refreshFollowed(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    const actor = this.followed;
    if (actor === undefined) return;
    this.refreshing = true;
    try {
      if (actor.run_id !== undefined) {
        const run = await this.api.get<RunStatus>(`/v1/runs/${encodeURIComponent(actor.run_id)}`);
        // Another actor followed meanwhile: this run's state (and its controls) is no longer shown.
        if (this.followed === actor) this.run = run;
        actor.value = run.value;
      } else {
        const info = await this.api.get<{ value: unknown }>(
          `/v1/playground/actors/${encodeURIComponent(actor.address)}`,
        );
        actor.value = info.value;
      }
      if (this.followed === actor) {
        const option = Array.from(select('actor-select').options).find((o) => o.value === actor.address);
        if (option !== undefined && actor.run_id !== undefined)
          option.textContent = `run ${actor.label} — ${stateName(actor.value)}`;
        this.renderActorPanel();
        if (!this.replaying) this.highlightCurrent();
      }
    } finally {
      this.refreshing = false;
      if (this.refreshAgain) {
        this.refreshAgain = false;
        void this.refreshFollowed().catch(showError);
      }
    }
  }

  private updateFocus(): void {
    $('graph').classList.toggle('focus', this.followed !== undefined && !input('labels-all').checked);
  }

  private highlightCurrent(): void {
    if (this.drawn === undefined || this.graph === undefined) return;
    const actor = this.followed;
    this.updateFocus();
    if (actor === undefined || actor.kind !== this.graph.kind) {
      this.drawn.highlight([]);
      $('graph').dataset['state'] = '';
      return;
    }
    const ids = activeStateIds(actor.value, this.graph.root.id);
    this.drawn.highlight(ids);
    $('graph').dataset['state'] = JSON.stringify(actor.value);
  }

  private onEvents(events: EventV1[]): void {
    this.timeline.onEvents(events);
    const actor = this.followed;
    let mine = false;
    for (const e of events) {
      if (e.kind === 'status' && (e.payload as { state?: unknown } | null)?.state === 'run.started')
        this.actorsDirty = true;
      if (
        actor !== undefined &&
        (e.actor === actor.address || (actor.run_id !== undefined && e.run_id === actor.run_id))
      )
        mine = true;
    }
    if (mine) {
      void this.refreshFollowed().catch(showError);
      if (actor?.run_id !== undefined) this.prepareReplay();
    }
  }

  /** Replay steps of the followed run, from the events the timeline holds for it. */
  private prepareReplay(): void {
    const actor = this.followed;
    if (actor?.run_id === undefined || this.timeline.id !== actor.run_id) {
      $('replay').hidden = true;
      return;
    }
    this.steps = replaySteps(this.timeline.model.events);
    const range = input('replay-range');
    range.max = String(Math.max(0, this.steps.length - 1));
    if (!this.replaying) range.value = range.max;
    $('replay').hidden = this.steps.length < 2;
    if (!this.replaying) $('replay-label').textContent = `${this.steps.length} steps; live`;
  }

  private showStep(i: number): void {
    if (this.steps.length === 0 || this.drawn === undefined || this.graph === undefined) return;
    const index = Math.min(this.steps.length - 1, Math.max(0, i));
    const step = this.steps[index] as ReplayStep;
    this.replaying = true;
    input('replay-range').value = String(index);
    this.drawn.highlight(activeStateIds(step.value, this.graph.root.id));
    $('graph').dataset['state'] = JSON.stringify(step.value);
    $('replay-label').textContent =
      `step ${index + 1}/${this.steps.length}: ${step.state}${step.seq > 0 ? ` at #${step.seq} ${new Date(step.ts).toISOString()}` : ''}`;
  }

  /** Reads an Enclave's members, then draws the panel again (its Reassign choices). */
  private async loadMembers(enclave: string): Promise<void> {
    this.members = { enclave, members: {} };
    try {
      const e = await this.api.get<{ members: Record<string, { role: string; permissions: string[] }> }>(
        `/v1/enclaves/${encodeURIComponent(enclave)}`,
      );
      if (this.members?.enclave !== enclave) return;
      this.members = { enclave, members: e.members };
      this.renderActorPanel();
    } catch {
      // Not readable (gone, or the daemon restarting): Reassign offers the run's workers; asked again
      // when another Enclave is shown.
    }
  }

  private renderActorPanel(): void {
    const actor = this.followed;
    const run = this.run;
    $('actor-title').textContent =
      actor === undefined
        ? 'No actor selected'
        : actor.run_id !== undefined
          ? `Run ${actor.run_id}`
          : actor.label;
    const facts: Array<[string, string]> = [];
    if (actor !== undefined) {
      facts.push(['address', actor.address], ['state', stateName(actor.value)]);
    }
    if (run !== undefined && actor?.run_id !== undefined) {
      facts.push(
        ['run state', run.state],
        ['current stage', run.current ?? '—'],
        ['playbook', `${run.playbook.name}@${run.playbook.version}`],
        ['owner', short(run.owner)],
        ['enclave', run.enclave_id ?? '—'],
      );
      if (run.end_reason !== null) facts.push(['ended', run.end_reason]);
    }
    $('actor-facts').replaceChildren(
      ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-fact': k }, v)]),
    );
    $('actor-panel').dataset['runState'] = run?.state ?? '';
    const live = run !== undefined && !['completed', 'failed', 'aborted'].includes(run.state);
    $('controls').hidden = run === undefined || !live;
    (document.getElementById('ctl-pause') as HTMLButtonElement).disabled = run?.state === 'paused';
    (document.getElementById('ctl-resume') as HTMLButtonElement).disabled = run?.state !== 'paused';
    $('takeover').hidden = run?.state !== 'takeover';
    if (run?.takeover) $('takeover-info').textContent = `stage ${run.takeover.stage}: ${run.takeover.reason}`;
    if (run !== undefined) {
      // Reassign may pick any member of the run's Enclave with write (a worker must have it), not
      // only the workers the run has used so far; used workers come first.
      const used = [...new Set(run.stages.map((s) => s.worker).filter((w): w is string => w !== null))];
      const members = this.members?.enclave === run.enclave_id ? this.members.members : {};
      if (run.enclave_id !== null && this.members?.enclave !== run.enclave_id)
        void this.loadMembers(run.enclave_id);
      const writers = Object.entries(members)
        .filter(([did, m]) => m.permissions.includes('write') && !used.includes(did))
        .map(([did]) => did);
      const label = (did: string) => {
        const role = members[did]?.role;
        return role === undefined ? short(did) : `${role} ${short(did)}`;
      };
      setOptions(
        select('ctl-worker'),
        [...used, ...writers].map((w) => ({ value: w, label: label(w) })),
      );
      $('stages').replaceChildren(
        h(
          'tr',
          {},
          h('th', {}, 'stage'),
          h('th', {}, 'status'),
          h('th', {}, 'retries'),
          h('th', {}, 'worker'),
        ),
        ...run.stages.map((s) =>
          h(
            'tr',
            { class: s.stage === run.current ? 'current' : '', 'data-stage': s.stage },
            h('td', {}, s.stage),
            h('td', { class: `st ${s.status}` }, s.status),
            h('td', {}, String(s.retry_count)),
            h('td', { title: s.worker ?? '' }, s.worker === null ? '—' : short(s.worker)),
          ),
        ),
      );
    } else {
      $('stages').replaceChildren();
    }
  }

  /** An Owner action on the followed run, through the same API route as `anx-runtime run …`. */
  private async control(action: string, extra: Record<string, unknown> = {}): Promise<void> {
    const run = this.run;
    if (run === undefined) return;
    if (action === 'abort' && !confirm(`Abort run ${run.run_id}? It cannot be resumed.`)) return;
    const reason = input('ctl-reason').value.trim();
    $('ctl-result').textContent = `${action}…`;
    try {
      const status = await this.api.post<RunStatus>(`/v1/runs/${encodeURIComponent(run.run_id)}/control`, {
        action,
        ...(reason === '' ? {} : { reason }),
        ...extra,
      });
      $('ctl-result').textContent = `${action}: run is ${status.state}`;
      this.run = status;
      await this.refreshFollowed();
    } catch (err) {
      $('ctl-result').textContent = `${action} refused: ${(err as Error).message}`;
    }
  }
}

function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '—';
  const parts: string[] = [];
  const walk = (v: unknown, prefix: string) => {
    if (typeof v === 'string') parts.push(prefix === '' ? v : `${prefix}.${v}`);
    else if (v !== null && typeof v === 'object')
      for (const [k, c] of Object.entries(v as Record<string, unknown>))
        walk(c, prefix === '' ? k : `${prefix}.${k}`);
  };
  walk(value, '');
  return parts.join(' + ');
}

async function main(): Promise<void> {
  const token = takeToken(location, sessionStorage, history);
  const form = $('token-form') as HTMLFormElement;
  // The daemon restarted (a new token) or the token was revoked: back to the form, saying why.
  whenUnauthorized(() => {
    forgetToken(sessionStorage);
    form.hidden = false;
    $('app').hidden = true;
    $('token-error').textContent =
      'The daemon refused the token: it restarted (a new token is written at each start). Paste the one in its api.token, or run `anx-runtime playground` again.';
  });
  const connect = async (t: string) => {
    $('token-error').textContent = '';
    const api = new PlaygroundApi(t);
    try {
      await api.get('/v1/status');
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        forgetToken(sessionStorage);
        form.hidden = false;
        $('app').hidden = true;
        $('token-error').textContent =
          'That token was refused: it is the one in api.token of the running daemon.';
        return;
      }
      throw err;
    }
    saveToken(sessionStorage, t);
    form.hidden = true;
    $('app').hidden = false;
    const app = new Playground(api);
    (window as unknown as { anxPlayground: Playground }).anxPlayground = app;
    await app.start();
    document.body.dataset['ready'] = 'true';
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void connect(input('token-input').value.trim()).catch(showError);
  });
  if (token === undefined) {
    form.hidden = false;
    return;
  }
  await connect(token);
}

void main().catch(showError);
