/**
 * Which clients may send X-Forwarded-* that the proxy keeps
 * (`entryPoints.NAME.forwardedHeaders.trustedIPs`).
 *
 * @module
 */

import { NetworkSet } from "../net/cidr.ts";

export class TrustedNetworks {
  private readonly set: NetworkSet;
  constructor(ranges: string[]) {
    this.set = new NetworkSet(ranges, "forwardedHeaders.trustedIPs entry");
  }
  contains(address: string): boolean {
    return this.set.contains(address);
  }
}
