// Typed errors of the SDK: a bad argument, a closed client, an identity that cannot be used.
import { AnxError, describeValue } from '../../runtime/errors.ts';

/** A value as error messages show it: strings whole up to the length of a DID with room to spare. */
function describe(value: unknown): string {
  if (typeof value === 'string' && value.length <= 120) return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array))
    return 'an object';
  return describeValue(value);
}

/** An SDK call got an argument it cannot use; the message says what was expected and what came. */
export class SdkArgumentError extends AnxError {
  constructor(
    readonly argument: string,
    expected: string,
    got: unknown,
  ) {
    super('ANX_SDK_ARGUMENT', `"${argument}" expected ${expected}, got ${describe(got)}`);
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
