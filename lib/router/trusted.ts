/**
 * Which clients may send X-Forwarded-* that the proxy keeps
 * (`entryPoints.NAME.forwardedHeaders.trustedIPs`).
 *
 * @module
 */

import { ipChecker } from "../rules/ip.ts";

export class TrustedNetworks {
  private readonly check?: (ip: string) => boolean;
  constructor(ranges: string[]) {
    if (ranges.length) this.check = ipChecker(ranges);
  }
  contains(address: string): boolean {
    return this.check ? this.check(address) : false;
  }
}
