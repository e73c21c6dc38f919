// Daemon mode: the agent talks to a running daemon through its local API; the daemon holds the identity's key.
import type { ArtifactRef } from '../../machines/playbook/definition.ts';
import { type ApiClient, DaemonConnectionLostError, DaemonNotRunningError } from '../api/client.ts';
import { RemoteWorker } from '../api/worker-client.ts';
import type { CardQuery } from '../relay/cards.ts';
import { BaseClient } from './base-client.ts';
import type { Artifact, InboxPage, RunStatus, SendResult, StageHandler, VaultPut } from './client.ts';
import { type AgentCard, type CardFields, type DiscoveredAgent, discoverSearch } from './discover.ts';
import { type DiscussionTransport, discussionApiTransport } from './discussions.ts';
import { apiTransport, type OrchestrationTransport } from './orchestration.ts';
import { type TaskTransport, taskApiTransport } from './tasks.ts';
import { type TokenTransport, tokenApiTransport } from './tokens.ts';
export class DaemonClient extends BaseClient {
  readonly mode = 'daemon' as const;
  /** The pollers of the roles this client serves. */
  private readonly roles = new Set<RemoteWorker>();

  constructor(
    readonly api: ApiClient,
    did: string,
    pollMs: number,
    private readonly workerPollMs = 200,
  ) {
    super(did, pollMs);
  }

  protected async deliver(request: { to: string; body?: unknown; type?: string; id?: string }) {
    const { results } = await this.api.post<{ results: SendResult[] }>('/v1/messages', {
      from: this.did,
      ...request,
    });
    return results[0] as SendResult;
  }

  protected async readInbox(options: { afterSeq?: number; limit: number }): Promise<InboxPage> {
    const query = new URLSearchParams({ limit: String(options.limit) });
    if (options.afterSeq !== undefined) query.set('after', String(options.afterSeq));
    const { received, unread, messages } = await this.api.get<InboxPage>(
      `/v1/inbox/${encodeURIComponent(this.did)}?${query}`,
    );
    return { received, unread, messages };
  }

  protected runStatus(runId: string): Promise<RunStatus> {
    return this.api.get<RunStatus>(`/v1/runs/${encodeURIComponent(runId)}`);
  }

  protected async vaultGet(enclaveId: string, key: string, version: number | undefined): Promise<Artifact> {
    const query = new URLSearchParams({ key, as: this.did });
    if (version !== undefined) query.set('version', String(version));
    const found = await this.api.get<{ meta: Artifact['meta']; content_base64: string }>(
      `/v1/vault/${encodeURIComponent(enclaveId)}/get?${query}`,
    );
    return { meta: found.meta, content: new Uint8Array(Buffer.from(found.content_base64, 'base64')) };
  }

  protected async vaultPut(enclaveId: string, key: string, artifact: VaultPut): Promise<ArtifactRef> {
    const { ref } = await this.api.post<{ ref: ArtifactRef }>(
      `/v1/vault/${encodeURIComponent(enclaveId)}/put`,
      {
        key,
        as: this.did,
        kind: artifact.kind ?? 'text',
        summary: artifact.summary ?? '',
        ...(typeof artifact.content === 'string'
          ? { content: artifact.content }
          : { content_base64: Buffer.from(artifact.content).toString('base64') }),
      },
    );
    return ref;
  }

  protected orchestrationTransport(): OrchestrationTransport {
    return apiTransport(this.api);
  }

  protected taskTransport(): TaskTransport {
    return taskApiTransport(this.api);
  }

  protected discussionTransport(): DiscussionTransport {
    return discussionApiTransport(this.api);
  }

  protected tokenTransport(): TokenTransport {
    return tokenApiTransport(this.api);
  }

  /** A RemoteWorker per role polls the daemon for the role's tasks until unregistered (BaseClient picks the handler). */
  protected registerStage(role: string, handler: StageHandler): () => void {
    const worker = new RemoteWorker(this.api, this.did, this.workerPollMs);
    worker.onStage(role, handler);
    this.roles.add(worker);
    worker.start();
    return () => {
      void worker.close();
      this.roles.delete(worker);
    };
  }

  protected async findCards(query: CardQuery): Promise<DiscoveredAgent[]> {
    const search = discoverSearch(query);
    const { cards } = await this.api.get<{ cards: DiscoveredAgent[] }>(
      `/v1/discover${search.size > 0 ? `?${search}` : ''}`,
    );
    return cards;
  }

  protected storeCard(fields: CardFields): Promise<AgentCard> {
    return this.api.post<AgentCard>('/v1/cards', { ...fields, did: this.did });
  }

  /** The daemon is restarting (or stopped): `messages()` keeps waiting for it until closed. */
  protected override isTransient(err: unknown): boolean {
    // The iterator only reads: a read cut off by a daemon killed mid-answer is waited out like one that
    // is not running yet.
    return err instanceof DaemonNotRunningError || err instanceof DaemonConnectionLostError;
  }

  protected async shutdown(): Promise<void> {
    await Promise.all([...this.roles].map((worker) => worker.close()));
    this.roles.clear();
    // Requests still waiting on the daemon end now (ANX_SDK_CLOSED) instead of when it answers.
    this.api.close();
  }
}
