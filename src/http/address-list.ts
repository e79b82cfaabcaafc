import { BlockList, isIP } from 'node:net';
import { isAddressOrSubnet } from './trust-proxy.js';

/**
 * A list of client addresses (METRICS_ALLOW): addresses, CIDR subnets and `loopback`. IPv4-mapped IPv6 peers
 * (::ffff:10.1.2.3) match their IPv4 entries.
 */
export class AddressList {
  private readonly list = new BlockList();

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      if (entry === 'loopback') {
        this.list.addSubnet('127.0.0.0', 8, 'ipv4');
        this.list.addAddress('::1', 'ipv6');
        continue;
      }
      const [address, prefix] = entry.split('/') as [string, string | undefined];
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.list.addAddress(address, family);
      else this.list.addSubnet(address, Number(prefix), family);
    }
  }

  has(address: string): boolean {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const ip = mapped ? mapped[1]! : address;
    const version = isIP(ip);
    return version !== 0 && this.list.check(ip, version === 6 ? 'ipv6' : 'ipv4');
  }
}

/** Validates one entry of an address list; null when fine, else why not. */
export function addressEntryProblem(entry: string): string | null {
  return entry === 'loopback' || isAddressOrSubnet(entry) ? null : `"${entry}" is not an address, a CIDR subnet or loopback`;
}
