// Argument checks at the SDK's edge: each failure is an SdkArgumentError naming what was expected and what came.

import { BATCH_TYPE } from '../../runtime/envelope/envelope.ts';
import { isDid } from '../../runtime/identity/did.ts';
import { MAX_ADDRESS_CHARS } from '../../runtime/kernel/actor-system.ts';
import { jsonValueProblem } from '../../runtime/value-checks.ts';
import type { InboxOptions, SendOptions, VaultPut } from './client.ts';
import { SdkArgumentError } from './errors.ts';

const MESSAGE_TYPE = /^[a-z][a-z0-9_.:-]{0,63}$/;
const MESSAGE_ID = /^[A-Za-z0-9_-]{16,64}$/;

export function requireString(argument: string, value: unknown, expected = 'a non-empty string'): string {
  if (typeof value !== 'string' || value.length === 0) throw new SdkArgumentError(argument, expected, value);
  return value;
}

export function requireDid(argument: string, value: unknown): string {
  if (typeof value !== 'string' || !isDid(value))
    throw new SdkArgumentError(argument, 'a did:agentnexus DID', value);
  return value;
}

/** A DID, or an actor address such as `run:…` (never an empty string or a non-string). */
export function requireAddress(argument: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ADDRESS_CHARS)
    throw new SdkArgumentError(
      argument,
      `a DID or actor address of at most ${MAX_ADDRESS_CHARS} characters`,
      value,
    );
  if (value.startsWith('did:') && !isDid(value))
    throw new SdkArgumentError(argument, 'a did:agentnexus DID', value);
  return value;
}

function requireObject(argument: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new SdkArgumentError(argument, 'an object', value);
  return value as Record<string, unknown>;
}

export function checkSendOptions(options: SendOptions | undefined): void {
  if (options === undefined) return;
  const o = requireObject('options', options);
  if (o['type'] !== undefined && (typeof o['type'] !== 'string' || !MESSAGE_TYPE.test(o['type'])))
    throw new SdkArgumentError(
      'type',
      'a lowercase message type like "message" or "task.propose"',
      o['type'],
    );
  if (o['type'] === BATCH_TYPE)
    throw new SdkArgumentError(
      'type',
      `a message type other than "${BATCH_TYPE}" (the kernel's own event)`,
      o['type'],
    );
  if (o['id'] !== undefined && (typeof o['id'] !== 'string' || !MESSAGE_ID.test(o['id'])))
    throw new SdkArgumentError('id', '16 to 64 characters of [A-Za-z0-9_-]', o['id']);
}

export function checkSeq(argument: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new SdkArgumentError(argument, 'a non-negative integer', value);
  return value;
}

export function checkInboxOptions(options: InboxOptions | undefined): { afterSeq?: number; limit: number } {
  if (options === undefined) return { limit: 100 };
  const o = requireObject('options', options);
  const afterSeq = checkSeq('afterSeq', o['afterSeq']);
  const limit = o['limit'] ?? 100;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > 1000)
    throw new SdkArgumentError('limit', 'an integer from 1 to 1000', limit);
  return afterSeq === undefined ? { limit } : { afterSeq, limit };
}

export function checkVaultPut(artifact: VaultPut): void {
  const a = requireObject('artifact', artifact);
  if (typeof a['content'] !== 'string' && !(a['content'] instanceof Uint8Array))
    throw new SdkArgumentError('artifact.content', 'a string or Uint8Array', a['content']);
  if (a['kind'] !== undefined) requireString('artifact.kind', a['kind']);
  if (a['summary'] !== undefined && typeof a['summary'] !== 'string')
    throw new SdkArgumentError('artifact.summary', 'a string', a['summary']);
}

export function checkVersion(options: { version?: number } | undefined): number | undefined {
  if (options === undefined) return undefined;
  const o = requireObject('options', options);
  if (o['version'] === undefined) return undefined;
  const v = o['version'];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new SdkArgumentError('version', 'a positive integer', v);
  return v;
}

export function checkHandler(value: unknown): void {
  if (typeof value !== 'function') throw new SdkArgumentError('handler', 'a function (ctx) => …', value);
}

/**
 * A message body is JSON data in both modes: a reader through the local API (a daemon client, the
 * CLI, an MCP server) gets it as JSON, so bytes or a Map would reach it changed. Depth and size are
 * the host's to check.
 */
export function checkBody(body: unknown): void {
  if (body === undefined) return;
  const problem = jsonValueProblem(body);
  if (problem !== undefined)
    throw new SdkArgumentError(`body${problem.path.slice(1)}`, problem.expected, problem.value);
}
