// Runs the envelope API examples end to end, so the documented usage keeps working.
import { describe, expect, it } from 'vitest';
import { receive, sendSealed, sendSigned } from '../../runtime/envelope/envelope.examples.ts';
import { alice, bob, suites } from './fixtures.ts';

describe.each(suites.map((s) => [s.name, s] as const))('envelope examples (%s)', (_n, suite) => {
  it('delivers a signed message and a sealed vote, and turns garbage into an error event', () => {
    expect(receive(bob, suite, sendSigned(alice, suite))).toEqual({ body: { title: 'Write the spec' } });
    expect(receive(bob, suite, sendSealed(alice, bob, suite))).toEqual({ body: { vote: 'approve' } });
    const refused = receive(bob, suite, new Uint8Array([0xc1]));
    expect('event' in refused && refused.event.payload.code).toBe('ANX_ENVELOPE_DECODE');
  });
});
