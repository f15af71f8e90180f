/**
 * The DNS-01 providers by name, built from one resolver's
 * `dnsChallenge` and its credentials. An unknown name or missing variables
 * is a {@linkcode DnsConfigError} naming the resolver and what is wrong;
 * only that resolver's orders fail.
 *
 * @module
 */

import type { DnsChallengeConfig } from "../../config/types.ts";
import { cloudflareFromCredentials } from "./cloudflare.ts";
import { Credentials, type ReadFile } from "./credentials.ts";
import { execFromCredentials } from "./exec.ts";
import { httpreqFromCredentials } from "./httpreq.ts";
import { type NameServer, parseNameServer } from "../../config/name_server.ts";
import { rfc2136FromCredentials } from "./rfc2136.ts";
import { route53FromCredentials } from "./route53.ts";
import { DnsConfigError, type DnsProvider, DnsProviderError, redact } from "./types.ts";

const FACTORIES: Record<string, (c: Credentials, resolvers: NameServer[]) => DnsProvider> = {
  cloudflare: (c) => cloudflareFromCredentials(c),
  exec: (c) => execFromCredentials(c),
  httpreq: (c) => httpreqFromCredentials(c),
  rfc2136: (c, resolvers) => rfc2136FromCredentials(c, resolvers),
  route53: (c) => route53FromCredentials(c),
};

/** The provider names Portico implements. */
export const DNS_PROVIDERS: readonly string[] = Object.keys(FACTORIES).sort();

/** `certificatesResolvers.NAME.acme.dnsChallenge`, as errors name it. */
export function dnsChallengePath(resolver: string): string {
  return `certificatesResolvers.${resolver}.acme.dnsChallenge`;
}

/** The resolvers of `dnsChallenge.resolvers` (checked by the static config already). */
export function configuredResolvers(config: DnsChallengeConfig): NameServer[] {
  return config.resolvers.map((r) => {
    const s = parseNameServer(r);
    if (typeof s === "string") throw new DnsConfigError(`resolvers: ${s}, found "${r}"`);
    return s;
  });
}

/**
 * Builds the provider of `resolver`. Its errors are redacted of every
 * secret read for it, whatever the provider put in them.
 */
export function createDnsProvider(
  resolver: string,
  config: DnsChallengeConfig,
  env: (name: string) => string | undefined,
  readFile?: ReadFile,
): DnsProvider {
  const where = dnsChallengePath(resolver);
  const factory = FACTORIES[config.provider.toLowerCase()];
  if (!factory) {
    throw new DnsConfigError(
      `${where}.provider: unknown DNS provider "${config.provider}"; supported: ${
        DNS_PROVIDERS.join(", ")
      }`,
    );
  }
  const credentials = Credentials.load(where, env, config.credentialsFile, readFile);
  const provider = factory(credentials, configuredResolvers(config));
  const secrets = credentials.secrets;
  const scrub = (err: unknown): never => {
    const e = err as Error;
    if (e instanceof DnsProviderError) {
      throw new DnsProviderError(
        e.provider,
        redact(e.message.slice(e.provider.length + 2), secrets),
        e.status,
      );
    }
    throw new DnsProviderError(provider.name, redact(e?.message ?? String(err), secrets));
  };
  return {
    name: provider.name,
    propagationTimeoutMs: provider.propagationTimeoutMs,
    pollingIntervalMs: provider.pollingIntervalMs,
    present: (r) => provider.present(r).catch(scrub),
    cleanUp: (r, h) => provider.cleanUp(r, h).catch(scrub),
  };
}
