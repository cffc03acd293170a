import { expect } from 'chai';
import { decodeSignInState, encodeSignInState, signInLifetimeMs, type SignInState } from '../../src/sign-in/sign-in-state.js';

const check = (c: string) => c.repeat(43);
const started = (startedAt: number): SignInState => ({ verifier: check('v'), state: check('s'), nonce: check('n'), startedAt });

describe('the sign-in cookie\'s state (pure)', function () {
  const now = 1_800_000_000_000;

  it('reads back what it wrote, for the whole of the sign-in\'s lifetime', function () {
    for (const age of [0, 1, signInLifetimeMs]) {
      expect(decodeSignInState(encodeSignInState(started(now - age)), now), `${age} ms old`).to.deep.equal(started(now - age));
    }
  });

  it('says expired one millisecond past the lifetime, and for a start in the future', function () {
    expect(decodeSignInState(encodeSignInState(started(now - signInLifetimeMs - 1)), now)).to.equal('expired');
    expect(decodeSignInState(encodeSignInState(started(now + 1)), now)).to.equal('expired');
  });

  it('refuses what it did not write: not JSON, a missing field, a short check, an oversized cookie', function () {
    const cases: [string, string][] = [
      ['not base64 JSON', '%%%'],
      ['no nonce', Buffer.from(JSON.stringify({ verifier: check('v'), state: check('s'), startedAt: now })).toString('base64url')],
      ['a short state', encodeSignInState({ ...started(now), state: 'abc' })],
      ['a state with a quote', encodeSignInState({ ...started(now), state: `${check('s')}"` })],
      ['a start that is not a number', Buffer.from(JSON.stringify({ ...started(now), startedAt: 'now' })).toString('base64url')],
      ['over 1000 characters', 'a'.repeat(1001)],
    ];
    for (const [what, text] of cases) expect(decodeSignInState(text, now), what).to.equal(undefined);
  });
});
