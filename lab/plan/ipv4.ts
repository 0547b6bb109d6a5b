/** IPv4 arithmetic on 32-bit unsigned numbers. Pure. */

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  network: number;
  prefix: number;
  /** First and last usable host addresses (the network and broadcast addresses excluded). */
  first: number;
  last: number;
  broadcast: number;
}

export function parseCidr(cidr: string): Cidr {
  const [addr, bits] = cidr.split('/');
  const prefix = Number(bits);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (ipToInt(addr!) & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  const pointToPoint = prefix >= 31;
  return {
    network,
    prefix,
    broadcast,
    first: pointToPoint ? network : network + 1,
    last: pointToPoint ? broadcast : broadcast - 1,
  };
}

export function netmaskOf(prefix: number): string {
  return intToIp(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

/** True when the address is a usable host address of the subnet. */
export function isHostIn(ip: string, cidr: Cidr): boolean {
  const n = ipToInt(ip);
  return n >= cidr.first && n <= cidr.last;
}

/** True when two subnets share any address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.network <= b.broadcast && b.network <= a.broadcast;
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.network)}/${c.prefix}`;
}
