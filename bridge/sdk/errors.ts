// Typed errors of the SDK: a bad argument, a closed client, an identity that cannot be used.
import { AnxError, describeValue } from '../../runtime/errors.ts';

/** An SDK call got an argument it cannot use; the message says what was expected and what came. */
export class SdkArgumentError extends AnxError {
  constructor(
    readonly argument: string,
    expected: string,
    got: unknown,
  ) {
    super('ANX_SDK_ARGUMENT', `"${argument}" expected ${expected}, got ${describeValue(got)}`);
  }
}

/** The client was used after `close()`. */
export class SdkClosedError extends AnxError {
  constructor(operation: string) {
    super('ANX_SDK_CLOSED', `${operation} was called after close()`, {
      hint: 'connect again to get a new client',
    });
  }
}

/** `connect({ did })` named a DID whose key the host does not hold. */
export class SdkIdentityError extends AnxError {
  constructor(did: string) {
    super('ANX_SDK_IDENTITY', `this host holds no key for ${did}, so the client cannot act as it`, {
      hint: 'connect with { name } to create a local identity, or pass a DID listed by `anx-runtime id list`',
    });
  }
}
