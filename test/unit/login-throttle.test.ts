import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../src/domain/accounts/login-throttle.js';
import { ManualClock } from '../../src/domain/clock.js';

describe('LoginThrottle', () => {
  it('allows a few failures per account, then refuses until the oldest leaves the sliding window', () => {
    const clock = new ManualClock();
    const throttle = new LoginThrottle({ clock, perAccount: 3, perIp: 100, windowMs: 60_000 });
    for (let i = 0; i < 3; i++) {
      expect(throttle.retryAfterSeconds('A@Example.test', '10.0.0.1')).toBe(0);
      throttle.recordFailure('a@example.test', '10.0.0.1');
      clock.advance(10_000);
    }
    // Failures at t=0, 10 s, 20 s; now t=30 s: the first one leaves the window at t=60 s.
    expect(throttle.retryAfterSeconds('a@example.test', '10.0.0.2')).toBe(30);
    clock.advance(30_000);
    expect(throttle.retryAfterSeconds('a@example.test', '10.0.0.2')).toBe(0);
  });

  it('counts failures per IP across accounts', () => {
    const clock = new ManualClock();
    const throttle = new LoginThrottle({ clock, perAccount: 100, perIp: 2 });
    throttle.recordFailure('one@example.test', '10.0.0.9');
    throttle.recordFailure('two@example.test', '10.0.0.9');
    expect(throttle.retryAfterSeconds('three@example.test', '10.0.0.9')).toBeGreaterThan(0);
    expect(throttle.retryAfterSeconds('three@example.test', '10.0.0.10')).toBe(0);
  });

  it("clears an account's failures on success, but not its IP's", () => {
    const clock = new ManualClock();
    const throttle = new LoginThrottle({ clock, perAccount: 2, perIp: 2 });
    throttle.recordFailure('me@example.test', '10.0.0.3');
    throttle.recordSuccess('me@example.test');
    throttle.recordFailure('me@example.test', '10.0.0.4');
    expect(throttle.retryAfterSeconds('me@example.test', '10.0.0.5')).toBe(0);
    throttle.recordFailure('x@example.test', '10.0.0.3');
    expect(throttle.retryAfterSeconds('y@example.test', '10.0.0.3')).toBeGreaterThan(0);
  });
});
