// The vault tab: an Enclave's artifacts, their versions, a diff between two versions, and a run's Delivery Manifest.
import type { ArtifactVersion } from '../../runtime/vault/types.ts';
import type { PlaygroundApi } from './api.ts';
import { diffLines } from './diff.ts';
import { $, h, select, setOptions, short, showError } from './dom.ts';

type Version = ArtifactVersion;

export class VaultView {
  private enclave = '';
  private key = '';
  /**
   * Bumped by every read that fills the artifact list (`lists`) or the view below it (`views`): a read
   * that a later one overtook leaves the screen to it, so a slow answer for the Enclave or key chosen
   * before never replaces what was chosen after.
   */
  private lists = 0;
  private views = 0;

  constructor(private readonly api: PlaygroundApi) {
    select('vault-enclave').addEventListener('change', () =>
      this.guard(this.showEnclave(select('vault-enclave').value)),
    );
    select('vault-as').addEventListener('change', () => this.guard(this.showEnclave(this.enclave)));
    select('vault-run').addEventListener('change', () =>
      this.guard(this.showManifest(select('vault-run').value)),
    );
  }

  /**
   * A refused or failed read leaves nothing on screen from before (a reader who may not read must not
   * seem to see the owner's view) and says why.
   */
  private guard(work: Promise<void>): void {
    void work.catch((err: unknown) => {
      $('vault-artifacts').replaceChildren();
      $('vault-versions').replaceChildren();
      $('vault-view').replaceChildren();
      showError(err);
    });
  }

  private as(): string {
    const v = select('vault-as').value;
    return v === '' ? '' : `&as=${encodeURIComponent(v)}`;
  }

  async load(enclave?: string, run?: string): Promise<void> {
    const { enclaves } = await this.api.get<{ enclaves: Array<{ enclave_id: string; name: string }> }>(
      '/v1/enclaves',
    );
    setOptions(
      select('vault-enclave'),
      enclaves.map((e) => ({ value: e.enclave_id, label: `${e.name} (${e.enclave_id})` })),
    );
    const { runs } = await this.api.get<{ runs: Array<{ run_id: string }> }>('/v1/runs');
    setOptions(select('vault-run'), [
      { value: '', label: '(none)' },
      ...runs.map((r) => ({ value: r.run_id, label: r.run_id })),
    ]);
    if (enclave !== undefined) select('vault-enclave').value = enclave;
    if (run !== undefined) select('vault-run').value = run;
    await this.showEnclave(select('vault-enclave').value);
  }

  /** Runs `read` as the latest of its kind: false (and its errors dropped) once a later one has started. */
  private async latest(
    kind: 'lists' | 'views',
    read: (current: () => boolean) => Promise<void>,
  ): Promise<void> {
    const mine = ++this[kind];
    const current = () => this[kind] === mine;
    try {
      await read(current);
    } catch (err) {
      if (current()) throw err;
    }
  }

  private showEnclave(id: string): Promise<void> {
    if (id === '') return Promise.resolve();
    // Whatever the view shows belongs to the Enclave being left.
    this.views++;
    return this.latest('lists', (current) => this.listEnclave(id, current));
  }

  private async listEnclave(id: string, current: () => boolean): Promise<void> {
    // What was shown of another Enclave, or as another reader, goes before anything is read.
    $('vault-artifacts').replaceChildren();
    $('vault-versions').replaceChildren();
    $('vault-view').replaceChildren();
    if (id !== this.enclave) {
      const e = await this.api.get<{ owner: string; members: Record<string, { role: string }> }>(
        `/v1/enclaves/${encodeURIComponent(id)}`,
      );
      if (!current()) return;
      setOptions(select('vault-as'), [
        { value: '', label: `owner ${short(e.owner)}` },
        ...Object.entries(e.members).map(([did, m]) => ({ value: did, label: `${m.role} ${short(did)}` })),
      ]);
    }
    this.enclave = id;
    const { artifacts } = await this.api.get<{ artifacts: Version[] }>(
      `/v1/vault/${encodeURIComponent(id)}/list?prefix=${this.as()}`,
    );
    if (!current()) return;
    $('vault-artifacts').replaceChildren(
      h('tr', {}, ...['key', 'v', 'kind', 'size', 'author', 'summary'].map((c) => h('th', {}, c))),
      ...artifacts.map((a) => {
        const row = h(
          'tr',
          { class: 'clickable', 'data-key': a.key },
          h('td', {}, a.key),
          h('td', {}, String(a.version)),
          h('td', {}, a.kind),
          h('td', {}, String(a.size)),
          h('td', { title: a.author }, short(a.author)),
          h('td', {}, a.summary),
        );
        row.addEventListener('click', () => this.guard(this.showKey(a.key)));
        return row;
      }),
    );
  }

  private showKey(key: string): Promise<void> {
    return this.latest('views', (current) => this.showVersions(key, current));
  }

  private async showVersions(key: string, current: () => boolean): Promise<void> {
    this.key = key;
    const { versions } = await this.api.get<{ versions: Version[] }>(
      `/v1/vault/${encodeURIComponent(this.enclave)}/history?key=${encodeURIComponent(key)}${this.as()}`,
    );
    if (!current()) return;
    const from = h('select', { id: 'diff-from', 'aria-label': 'diff from version' });
    const to = h('select', { id: 'diff-to', 'aria-label': 'diff to version' });
    for (const sel of [from, to])
      setOptions(
        sel as HTMLSelectElement,
        versions.map((v) => ({
          value: String(v.version),
          label: `v${v.version} · ${new Date(v.ts).toISOString()} · ${v.summary}`,
        })),
      );
    const last = versions[versions.length - 1]?.version ?? 1;
    (to as HTMLSelectElement).value = String(last);
    (from as HTMLSelectElement).value = String(Math.max(1, last - 1));
    const show = h('button', { type: 'button', id: 'diff-show' }, 'Diff');
    const view = h('button', { type: 'button', id: 'version-show' }, 'Show "to"');
    show.addEventListener('click', () =>
      this.guard(
        this.latest('views', (now) =>
          this.diff(Number((from as HTMLSelectElement).value), Number((to as HTMLSelectElement).value), now),
        ),
      ),
    );
    view.addEventListener('click', () =>
      this.guard(
        this.latest('views', (now) => this.showVersion(Number((to as HTMLSelectElement).value), now)),
      ),
    );
    $('vault-versions').replaceChildren(h('strong', {}, key), ' from ', from, ' to ', to, show, view);
    await (versions.length > 1
      ? this.diff(Math.max(1, last - 1), last, current)
      : this.showVersion(last, current));
  }

  private async text(version: number): Promise<string> {
    const a = await this.api.get<{ content?: string; meta: { size: number } }>(
      `/v1/vault/${encodeURIComponent(this.enclave)}/get?key=${encodeURIComponent(this.key)}&version=${version}${this.as()}`,
    );
    return a.content ?? `(binary, ${a.meta.size} bytes)`;
  }

  private async showVersion(version: number, current: () => boolean): Promise<void> {
    const text = await this.text(version);
    if (!current()) return;
    $('vault-view').replaceChildren(text);
    $('vault-view').dataset['mode'] = 'content';
  }

  private async diff(from: number, to: number, current: () => boolean): Promise<void> {
    const [a, b] = await Promise.all([this.text(from), this.text(to)]);
    if (!current()) return;
    const lines = diffLines(a, b);
    // Appended one by one: a spread of every line as arguments overflows the stack on long texts.
    const rows = document.createDocumentFragment();
    rows.append(h('div', { class: 'diff-head' }, `${this.key}: v${from} → v${to}`));
    for (const l of lines)
      rows.append(
        h(
          'div',
          { class: `diff ${l.op === '+' ? 'add' : l.op === '-' ? 'del' : 'same'}` },
          `${l.op} ${l.text}`,
        ),
      );
    $('vault-view').replaceChildren(rows);
    $('vault-view').dataset['mode'] = 'diff';
  }

  private showManifest(runId: string): Promise<void> {
    if (runId === '') return Promise.resolve();
    return this.latest('views', (current) => this.manifest(runId, current));
  }

  private async manifest(runId: string, current: () => boolean): Promise<void> {
    try {
      const m = await this.api.get<unknown>(`/v1/runs/${encodeURIComponent(runId)}/manifest`);
      if (!current()) return;
      $('vault-view').replaceChildren(
        h('div', { class: 'diff-head' }, `Delivery Manifest of ${runId}`),
        JSON.stringify(m, null, 2),
      );
      $('vault-view').dataset['mode'] = 'manifest';
    } catch (err) {
      if (!current()) return;
      $('vault-view').replaceChildren(`No Delivery Manifest for ${runId} yet: ${(err as Error).message}`);
    }
  }
}
