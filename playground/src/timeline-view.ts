// The timeline tab: a run's (task's, actor's) events in a virtualised list, filtered, following the live stream.
import { EVENT_KINDS, type EventV1 } from '../../runtime/events/event.ts';
import type { PlaygroundApi } from './api.ts';
import { $, h, input, showError, timeOf } from './dom.ts';
import { eventLine, TimelineModel, visibleWindow } from './timeline.ts';

export const ROW_HEIGHT = 18;

/** Timings of the last load, read by the benchmark. */
export interface TimelineTimings {
  id: string;
  count: number;
  fetch_ms: number;
  render_ms: number;
  total_ms: number;
}

export class TimelineView {
  readonly model = new TimelineModel();
  id = '';
  private readonly list = $('tl-list');
  private readonly spacer: HTMLElement;
  private readonly rows: HTMLElement[] = [];
  private drawQueued = false;
  private loadToken = 0;
  lastTimings: TimelineTimings | undefined;

  constructor(private readonly api: PlaygroundApi) {
    this.spacer = this.list.querySelector('.spacer') as HTMLElement;
    const kinds = $('tl-kinds');
    for (const k of EVENT_KINDS) {
      kinds.append(
        h('label', { class: `kind ${k}` }, h('input', { type: 'checkbox', value: k, 'data-kind': k }), k),
      );
    }
    this.list.addEventListener('scroll', () => this.queueDraw(), { passive: true });
    new ResizeObserver(() => this.queueDraw()).observe(this.list);
    for (const id of ['tl-actor', 'tl-status', 'tl-since', 'tl-until'])
      $(id).addEventListener('input', () => this.applyFilter());
    kinds.addEventListener('change', () => this.applyFilter());
    $('tl-load').addEventListener(
      'click',
      () => void this.load(input('tl-id').value.trim()).catch(showError),
    );
    input('tl-id').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') void this.load(input('tl-id').value.trim()).catch(showError);
    });
  }

  /** Loads every event of `id` (as `trace` returns them), then keeps following the live stream. */
  async load(id: string): Promise<void> {
    if (id === '') return;
    const token = ++this.loadToken;
    const started = performance.now();
    this.id = id;
    input('tl-id').value = id;
    this.model.clear();
    const { events } = await this.api.get<{ events: EventV1[] }>(`/v1/trace/${encodeURIComponent(id)}`);
    if (token !== this.loadToken) return;
    const fetched = performance.now();
    this.model.add(events);
    this.applyFilter(false);
    // The list's height first, so that "follow" scrolls to the real bottom.
    this.sizeSpacer();
    this.list.scrollTop = input('tl-follow').checked ? this.list.scrollHeight : 0;
    this.drawNow();
    await new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r())));
    const done = performance.now();
    this.lastTimings = {
      id,
      count: this.model.rows.length,
      fetch_ms: fetched - started,
      render_ms: done - fetched,
      total_ms: done - started,
    };
    this.list.dataset['loaded'] = String(this.model.size);
  }

  private sizeSpacer(): void {
    this.spacer.style.height = `${this.model.rows.length * ROW_HEIGHT}px`;
  }

  /** The tab became visible: a hidden list had no height, so "follow" scrolls to the bottom now. */
  shown(): void {
    if (!input('tl-follow').checked) return;
    this.sizeSpacer();
    this.list.scrollTop = this.list.scrollHeight;
    this.queueDraw();
  }

  /** Live events from the stream: those of the shown id are added (the stream's own matching rule). */
  onEvents(events: readonly EventV1[]): void {
    if (this.id === '') return;
    const mine =
      this.id === '*'
        ? events
        : events.filter((e) => e.run_id === this.id || e.task_id === this.id || e.actor === this.id);
    if (mine.length === 0) return;
    const before = this.model.rows.length;
    const atBottom = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - ROW_HEIGHT * 2;
    if (this.model.add(mine) === 0) return;
    if (this.model.rows.length !== before && atBottom && input('tl-follow').checked) {
      this.sizeSpacer();
      this.list.scrollTop = this.list.scrollHeight;
    }
    this.queueDraw();
  }

  private applyFilter(draw = true): void {
    const kinds = new Set(
      Array.from($('tl-kinds').querySelectorAll<HTMLInputElement>('input:checked')).map((i) => i.value),
    );
    const since = timeOf(input('tl-since').value);
    const until = timeOf(input('tl-until').value);
    this.model.setFilter({
      kinds,
      actor: input('tl-actor').value.trim(),
      status: input('tl-status').value.trim(),
      ...(since === undefined ? {} : { since }),
      ...(until === undefined ? {} : { until }),
    });
    if (draw) this.drawNow();
  }

  private queueDraw(): void {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.drawNow();
    });
  }

  /** Draws only the rows in view (and a few either side), reusing their elements. */
  private drawNow(): void {
    const rows = this.model.rows;
    this.spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    const { first, last } = visibleWindow(
      this.list.scrollTop,
      this.list.clientHeight,
      ROW_HEIGHT,
      rows.length,
    );
    const needed = last - first;
    while (this.rows.length < needed) {
      const row = h('div', { class: 'tl-row' });
      this.rows.push(row);
      this.list.append(row);
    }
    for (let i = 0; i < this.rows.length; i++) {
      const row = this.rows[i] as HTMLElement;
      const e = rows[first + i];
      if (i >= needed || e === undefined) {
        row.hidden = true;
        continue;
      }
      row.hidden = false;
      row.style.transform = `translateY(${(first + i) * ROW_HEIGHT}px)`;
      if (row.dataset['seq'] !== String(e.seq)) {
        row.dataset['seq'] = String(e.seq);
        row.className = `tl-row ${e.kind}`;
        row.textContent = eventLine(e);
      }
    }
    $('tl-count').textContent =
      rows.length === this.model.size
        ? `${rows.length} events`
        : `${rows.length} of ${this.model.size} events`;
  }
}
