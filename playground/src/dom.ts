// Small DOM helpers for the playground page, and how it shows errors.
import { ApiError } from './api.ts';

export function $(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the page has no #${id}`);
  return e;
}

export function input(id: string): HTMLInputElement {
  return $(id) as HTMLInputElement;
}

export function select(id: string): HTMLSelectElement {
  return $(id) as HTMLSelectElement;
}

/** Creates an element with text and attributes; children are appended in order. */
export function h(
  tag: string,
  attrs: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

/** Replaces a select's options, keeping the selection when it still exists. */
export function setOptions(sel: HTMLSelectElement, options: Array<{ value: string; label: string }>): void {
  const keep = sel.value;
  sel.replaceChildren(...options.map((o) => h('option', { value: o.value }, o.label)));
  if (options.some((o) => o.value === keep)) sel.value = keep;
}

export function short(did: string): string {
  return did.length > 28 ? `${did.slice(0, 18)}…${did.slice(-6)}` : did;
}

/** `datetime-local` value to ms since the epoch, or undefined when empty. */
export function timeOf(value: string): number | undefined {
  if (value === '') return undefined;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

let onUnauthorized: (() => void) | undefined;

/** What to do when the daemon refuses the token (it restarted with a new one): ask for the new one. */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

/**
 * Shows an error where the user is looking: under the token form while it is shown, else in the
 * page's error line. A refused token hands over to `whenUnauthorized`.
 */
export function showError(err: unknown): void {
  if (err instanceof ApiError && err.status === 401 && onUnauthorized !== undefined) {
    onUnauthorized();
    return;
  }
  const text =
    err instanceof ApiError ? `${err.message}${err.hint === undefined ? '' : ` — ${err.hint}`}` : String(err);
  const app = document.getElementById('app');
  $(app === null || app.hidden ? 'token-error' : 'error').textContent = text;
}
