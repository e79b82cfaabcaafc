import net from 'node:net';

/**
 * Where outbound requests made for users (webhooks) may go (docs/webhooks.md, "Where deliveries may go"): public
 * unicast addresses only. Loopback, private, link-local, unique-local, CGNAT, multicast, documentation and
 * unspecified ranges would let anyone with an account probe or call services inside the operator's network (SSRF),
 * so they are refused unless the operator allows them (MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE).
 */
const blocked = new net.BlockList();
for (const [prefix, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(prefix, bits, 'ipv4');
for (const [prefix, bits] of [
  ['::', 96], ['::1', 128], ['100::', 64], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) blocked.addSubnet(prefix, bits, 'ipv6');

/** An IPv6 address as 8 numbers (handles `::` and a trailing dotted IPv4 part); null when it is not one. */
function ipv6Groups(address: string): number[] | null {
  if (net.isIPv6(address) === false) return null;
  let text = address.replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, null];
  const parse = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = tail === null ? [] : parse(tail);
  return tail === null ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
}

const v4Of = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/** The IPv4 address an IPv6 form carries (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16), if any. */
export function embeddedIpv4(address: string): string | null {
  const g = ipv6Groups(address);
  if (!g) return null;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && g[5] === 0xffff) return v4Of(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4Of(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4Of(g[1]!, g[2]!);
  return null;
}

/** True for an address no webhook may reach by default; anything that is not an IP address counts as forbidden. */
export function isForbiddenAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  if (net.isIPv4(bare)) return blocked.check(bare, 'ipv4');
  if (!net.isIPv6(bare)) return true;
  const v4 = embeddedIpv4(bare);
  if (v4 && blocked.check(v4, 'ipv4')) return true;
  return blocked.check(bare.replace(/%.*$/, ''), 'ipv6');
}

export const WEBHOOK_URL_MAX = 2000;

/**
 * Why a webhook URL is refused at creation, or null when it is fine: http(s) only, no credentials in it, and (unless
 * private targets are allowed) not a forbidden literal address nor a `localhost` name. Names are checked again,
 * after DNS resolution, at every delivery (outbound/webhook-post.ts).
 */
export function webhookUrlProblem(raw: string, allowPrivate: boolean): string | null {
  if (raw.length > WEBHOOK_URL_MAX) return `The URL is longer than ${WEBHOOK_URL_MAX} characters.`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'Enter a full URL such as https://example.com/hooks/modelbridge.';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'Webhook URLs start with https:// or http://.';
  if (url.username || url.password) return 'Put no user name or password in the URL; check the signature instead.';
  if (allowPrivate) return null;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const isLiteral = net.isIP(host) !== 0;
  if ((isLiteral && isForbiddenAddress(host)) || host === 'localhost' || host.endsWith('.localhost'))
    return 'Webhooks cannot go to loopback, private or link-local addresses.';
  return null;
}
