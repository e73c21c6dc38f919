// Public entry of the SDK: explicit named exports only; adding a name here is a decision.

export type { ArtifactRef } from '../../machines/playbook/definition.ts';
export { AnxError, isAnxError } from '../../runtime/errors.ts';
export {
  ApiError,
  DaemonConnectionLostError,
  DaemonNotRunningError,
  DaemonTimeoutError,
} from '../api/client.ts';
export type {
  AnxClient,
  Artifact,
  InboxOptions,
  InboxPage,
  Message,
  MessagesOptions,
  RunStatus,
  SendOptions,
  SendResult,
  StageContext,
  StageHandler,
  StageTask,
  VaultPut,
} from './client.ts';
export { type ConnectOptions, connect } from './connect.ts';
export type { AgentCard, CardFields, DiscoveredAgent, DiscoverQuery } from './discover.ts';
export type {
  Discussion,
  DiscussionsApi,
  ForwardedDiscussionRequest,
  OpenOptions,
  Post,
  UnreadPage,
  VoteRule,
} from './discussions.ts';
export { SdkArgumentError, SdkClosedError, SdkIdentityError } from './errors.ts';
export type {
  Binding,
  BindOptions,
  Dispatch,
  DispatchOptions,
  Owner,
  OwnerApi,
  Secretary,
  SecretaryApi,
} from './orchestration.ts';
export type { ForwardedRequest, HomeOption, ProposeOptions, Task, TaskResource, TasksApi } from './tasks.ts';
export type {
  DelegateOptions,
  IssuedToken,
  IssueOptions,
  TokenConstraints,
  TokenGrant,
  TokenInspection,
  TokensApi,
  TokenWindow,
} from './tokens.ts';
