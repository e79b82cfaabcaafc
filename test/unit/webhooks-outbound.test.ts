import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIRST_RETRY_MS, MAX_RETRY_GAP_MS, nextAttemptAt, RETRY_WINDOW_MS } from '../../src/domain/webhooks/backoff.js';
import { signWebhook } from '../../src/domain/webhooks/signature.js';
import { embeddedIpv4, isForbiddenAddress, webhookUrlProblem } from '../../src/outbound/address-policy.js';

describe('webhook address policy', () => {
  it('forbids loopback, private, link-local, unique-local, CGNAT, multicast and unspecified addresses', () => {
    for (const a of ['127.0.0.1', '127.255.1.2', '10.0.0.1', '172.16.5.4', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
      '224.0.0.1', '255.255.255.255', '::', '::1', 'fc00::1', 'fd12:3456::1', 'fe80::1%eth0', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1',
      '::ffff:10.0.0.1', '64:ff9b::a00:1', '2002:c0a8:101::1', 'not-an-ip'])
      expect(isForbiddenAddress(a), a).toBe(true);
  });

  it('allows public unicast addresses', () => {
    for (const a of ['1.1.1.1', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808'])
      expect(isForbiddenAddress(a), a).toBe(false);
  });

  it('finds the IPv4 address inside mapped, NAT64 and 6to4 forms', () => {
    expect(embeddedIpv4('::ffff:192.168.0.1')).toBe('192.168.0.1');
    expect(embeddedIpv4('::ffff:c0a8:1')).toBe('192.168.0.1');
    expect(embeddedIpv4('64:ff9b::7f00:1')).toBe('127.0.0.1');
    expect(embeddedIpv4('2002:7f00:1::')).toBe('127.0.0.1');
    expect(embeddedIpv4('2606:4700::1111')).toBeNull();
  });

  it('judges URLs as the WHATWG parser reads them (decimal and hex IPv4 forms are loopback too)', () => {
    for (const u of ['http://2130706433/', 'http://0x7f000001/', 'http://127.1/', 'http://[::ffff:127.0.0.1]/', 'http://LOCALHOST/', 'http://a.localhost/'])
      expect(webhookUrlProblem(u, false), u).toMatch(/loopback/);
    expect(webhookUrlProblem('http://127.0.0.1:9/', true)).toBeNull();
    expect(webhookUrlProblem('https://hooks.example.com/x', false)).toBeNull();
  });
});

describe('webhook retry schedule', () => {
  it('waits 30 s after the first failure, doubling up to 4 h, with at most 10 % jitter, and stops a day after the event', () => {
    // The last retry of a day, whose jitter would carry it past the window, is one counterexample fast-check found.
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: RETRY_WINDOW_MS }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempts, elapsed, random) => {
      const created = new Date('2026-12-01T00:00:00Z');
      const now = new Date(created.getTime() + elapsed);
      const next = nextAttemptAt(created, attempts, now, random);
      const gap = Math.min(MAX_RETRY_GAP_MS, FIRST_RETRY_MS * 2 ** (attempts - 1));
      if (next === null) return now.getTime() + gap > created.getTime() + RETRY_WINDOW_MS;
      const wait = next.getTime() - now.getTime();
      return wait >= gap && wait <= gap * 1.1 && next.getTime() <= created.getTime() + RETRY_WINDOW_MS;
    }), { examples: [[10, 70_560_002, 0.9999989583333336]] });
  });
});

describe('webhook signature', () => {
  it('is Standard Webhooks v1: base64 HMAC-SHA256 of id.timestamp.body keyed with the decoded secret', () => {
    // Standard Webhooks' published test vector.
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = '{"test": 2432232314}';
    expect(signWebhook(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, body)).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });
});
