// Embedded mode: the kernel runs in the agent's own process, over a host opened on its own data directory.
import type { ArtifactRef } from '../../machines/playbook/definition.ts';
import type { Host } from '../../runtime/host.ts';
import type { CardQuery } from '../relay/cards.ts';
import { localCards } from '../relay/local-cards.ts';
import { BaseClient } from './base-client.ts';
import type { Artifact, InboxPage, RunStatus, SendResult, StageHandler, VaultPut } from './client.ts';
import type { AgentCard, CardFields, DiscoveredAgent } from './discover.ts';
import { type DiscussionTransport, discussionHostTransport } from './discussions.ts';
import { hostTransport, type OrchestrationTransport } from './orchestration.ts';
import { type TaskTransport, taskHostTransport } from './tasks.ts';
import { type TokenTransport, tokenHostTransport } from './tokens.ts';
export class EmbeddedClient extends BaseClient {
  readonly mode = 'embedded' as const;

  constructor(
    /** The host this client acts on; shared by every client connected to it. */
    readonly host: Host,
    did: string,
    pollMs: number,
    /** Close the host with this client (it was opened by `connect`). */
    private readonly ownsHost: boolean,
  ) {
    super(did, pollMs);
  }

  protected async deliver(request: { to: string; body?: unknown; type?: string; id?: string }) {
    const [result] = await this.host.send([{ from: this.did, ...request }]);
    return result as SendResult;
  }

  protected async readInbox(options: { afterSeq?: number; limit: number }): Promise<InboxPage> {
    const { received, unread, messages } = this.host.inbox(this.did, options);
    return { received, unread, messages };
  }

  protected async runStatus(runId: string): Promise<RunStatus> {
    return this.host.teamwork.runs.status(runId);
  }

  protected async vaultGet(enclaveId: string, key: string, version: number | undefined): Promise<Artifact> {
    return this.host.teamwork.vault.get(enclaveId, key, this.did, version);
  }

  protected vaultPut(enclaveId: string, key: string, artifact: VaultPut): Promise<ArtifactRef> {
    return this.host.teamwork.vault.put(
      enclaveId,
      key,
      { kind: artifact.kind ?? 'text', content: artifact.content, summary: artifact.summary ?? '' },
      this.did,
    );
  }

  protected orchestrationTransport(): OrchestrationTransport {
    return hostTransport(this.host);
  }

  protected taskTransport(): TaskTransport {
    return taskHostTransport(this.host);
  }

  protected discussionTransport(): DiscussionTransport {
    return discussionHostTransport(this.host);
  }

  protected tokenTransport(): TokenTransport {
    return tokenHostTransport(this.host);
  }

  protected registerStage(role: string, handler: StageHandler): () => void {
    return this.host.teamwork.worker(this.did).onStage(role, handler);
  }

  /** An embedded host has no relay: its own identities' cards are all it knows. */
  protected async findCards(query: CardQuery): Promise<DiscoveredAgent[]> {
    return localCards(this.host).discover(query);
  }

  protected storeCard(fields: CardFields): Promise<AgentCard> {
    return localCards(this.host).publish({ ...fields, did: this.did });
  }

  protected async shutdown(): Promise<void> {
    if (this.ownsHost) await this.host.close();
  }
}
