/**
 * ACME as an instance runs it, from `certificatesResolvers`: standalone, each
 * resolver keeps its account and certificates in its `storage` file; in a
 * cluster, everything lives in the KV store, sealed with the cluster key and
 * written only through the manager's fenced write, orders and DNS records
 * are journalled, only the manager orders, and it validates only after
 * every joined node has confirmed it serves the challenge.
 *
 * @module
 */

import { settleWithin } from "../deadline.ts";
import type { CertificateResolverConfig, EntryPointConfig, RouterConfig, StaticConfig } from "../config/types.ts";
import type { KVStore, KVWatch } from "../kv/types.ts";
import type { Logger } from "../log/logger.ts";
import type { MergedConfig } from "../providers/merge.ts";
import type { Service } from "../services/types.ts";
import type { CertificateStore } from "../tls/store.ts";
import type { ClusterMember } from "../cluster/member.ts";
import { CHALLENGE_SERVICE, ChallengeAnswers, type ChallengeSink, HTTP01_PREFIX } from "./challenges.ts";
import { readinessGate, serveChallengeChecks, waitForTcp } from "./cluster_gate.ts";
import { KvDnsRecordJournal } from "./dns/record_journal.ts";
import { wantedCertificates } from "./domains.ts";
import { configureCaTrust, TLS_ALPN_UNSUPPORTED } from "./issuer.ts";
import { KvOrderJournal, type OrderJournal } from "./journal.ts";
import { KvAcmeStorage } from "./kv_storage.ts";
import { AcmeManager, type AcmeView, type CertificateView, leafSerial } from "./manager.ts";
import { type KeySource, SecretBox } from "./secret_box.ts";
import { type AccountRecord, type AcmeStorage, type CertificateRecord, FileStorage } from "./storage.ts";
import { ENCRYPTION_KEY_ENV, PREVIOUS_ENCRYPTION_KEYS_ENV } from "../env.ts";

/** Inputs of {@linkcode startAcme}. */
export interface AcmeOptions {
  staticConfig: StaticConfig;
  log: Logger;
  /** The certificate store ACME installs its certificates into. */
  certificates: CertificateStore;
  /** The KV store shared by the cluster; absent standalone. */
  kv?: { store: KVStore; rootKey: string };
  /** This instance's cluster membership. */
  cluster: ClusterMember;
  /** Resolves once a TLS listener accepts (TLS-ALPN challenges). */
  tlsListening: Promise<void>;
  env: (name: string) => string | undefined;
  now?: () => Date;
}

/** What a running ACME setup gives the instance. */
export interface AcmeRuntime {
  readonly manager: AcmeManager;
  /** `acme-http@internal`, answering HTTP-01 challenges. */
  readonly challengeService: Service;
  /** The HTTP-01 challenge router of the `internal` provider. */
  readonly internalRouters: Record<string, RouterConfig>;
  certificates(): CertificateView[];
  view(): AcmeView;
  /** After every swap: the certificates the routers now want. */
  onApplied(merged: MergedConfig): void;
  stop(): Promise<void>;
}

/** Routes each resolver to its own `storage` file. */
class ResolverFiles implements AcmeStorage {
  #files = new Map<string, FileStorage>();
  constructor(resolvers: Record<string, CertificateResolverConfig>) {
    for (const [name, r] of Object.entries(resolvers)) {
      this.#files.set(name, new FileStorage(r.acme.storage));
    }
  }
  #f(resolver: string): FileStorage {
    return this.#files.get(resolver)!;
  }
  loadAccount(r: string) {
    return this.#f(r).loadAccount(r);
  }
  saveAccount(r: string, a: AccountRecord) {
    return this.#f(r).saveAccount(r, a);
  }
  loadCertificates(r: string) {
    return this.#f(r).loadCertificates(r);
  }
  saveCertificate(r: string, c: CertificateRecord) {
    return this.#f(r).saveCertificate(r, c);
  }
}

/** Undefined when no `certificatesResolvers` are configured. */
export async function startAcme(options: AcmeOptions): Promise<AcmeRuntime | undefined> {
  const { staticConfig, env, cluster } = options;
  const resolvers = staticConfig.certificatesResolvers ?? {};
  if (Object.keys(resolvers).length === 0) return undefined;
  const log = options.log;
  for (const [name, r] of Object.entries(resolvers)) {
    if (r.acme.tlsChallenge && !r.acme.httpChallenge && !r.acme.dnsChallenge) {
      log.error("certificatesResolvers." + name + ".acme.tlsChallenge", { error: TLS_ALPN_UNSUPPORTED });
    }
  }
  await configureCaTrust(Object.values(resolvers).map((r) => r.acme), env);

  const answers = new ChallengeAnswers(options.certificates);
  const kv = options.kv;
  const clustered = kv !== undefined && cluster.view().clustered;
  const unsubscribe: (() => void)[] = [];
  let watch: KVWatch | undefined;
  let storage: AcmeStorage;
  let sink: ChallengeSink = answers;
  let journal: OrderJournal | undefined;
  let dnsRecords: KvDnsRecordJournal | undefined;
  let gate: ReturnType<typeof readinessGate> | undefined;
  let manager: AcmeManager | undefined;
  if (clustered) {
    const box = await clusterSecretBox(staticConfig, env, log);
    const fenced = (ops: Parameters<ClusterMember["fencedWrite"]>[0]) => cluster.fencedWrite(ops);
    const kvStorage = new KvAcmeStorage(kv.store, kv.rootKey, box, fenced);
    storage = kvStorage;
    sink = kvStorage.challengeSink(answers);
    journal = new KvOrderJournal(kv.store, kv.rootKey, box, fenced, (c) => kvStorage.encodeCertificate(c));
    dnsRecords = new KvDnsRecordJournal(kv.store, kv.rootKey, fenced);
    gate = readinessGate(staticConfig.entryPoints, resolvers, cluster, log);
    unsubscribe.push(serveChallengeChecks(staticConfig.entryPoints, resolvers, cluster));
    watch = kvStorage.watch((resolver, record, error) => {
      if (error) {
        log.error("certificate in the KV store is unusable; keeping the others", { resolver, error });
      } else if (record) manager!.install(resolver, record);
    }, answers);
  } else {
    storage = new ResolverFiles(resolvers);
  }
  manager = new AcmeManager({
    resolvers,
    storage,
    challenges: sink,
    tlsStore: options.certificates,
    log,
    now: options.now,
    env,
    journal,
    dnsRecords,
    gate,
    identity: () => ({ term: cluster.leaderRecord()?.term ?? 0, nodeId: cluster.nodeId() }),
  });

  // Orders must not start before the challenge entrypoints listen, or the
  // CA's validation (which follows within milliseconds) finds nothing.
  const listenersReady = async () => {
    const waits: Promise<unknown>[] = [];
    for (const r of Object.values(resolvers)) {
      const ep: EntryPointConfig | undefined = r.acme.httpChallenge &&
        staticConfig.entryPoints[r.acme.httpChallenge.entryPoint];
      if (ep) waits.push(waitForTcp(ep.hostname || "127.0.0.1", ep.port));
      if (r.acme.tlsChallenge) waits.push(options.tlsListening);
    }
    await settleWithin(Promise.all(waits), 10_000);
  };
  const activate = () =>
    listenersReady().then(() => manager!.activate()).catch((err) =>
      log.error("ACME activation failed", { error: (err as Error).message })
    );
  // Standalone, the member is manager at once and says so on subscribe.
  unsubscribe.push(cluster.on("becameManager", () => void activate()));
  unsubscribe.push(cluster.on("lostManager", () => manager!.deactivate()));
  if (clustered) await manager.loadStored();

  const m = manager;
  return {
    manager: m,
    challengeService: answers.service(),
    internalRouters: {
      "acme-http": {
        rule: `PathPrefix(\`${HTTP01_PREFIX}\`)`,
        service: CHALLENGE_SERVICE,
        entryPoints: [],
        middlewares: [],
        priority: Number.MAX_SAFE_INTEGER,
      },
    },
    certificates: () => m.view(),
    view: () => ({
      issued: m.issued,
      failures: m.failures,
      active: m.active,
      failuresByResolver: Object.fromEntries(
        Object.keys(resolvers).map((r) => [r, m.failuresByResolver.get(r) ?? 0]),
      ),
      reseal: m.reseal,
    }),
    onApplied(merged) {
      const { wanted, errors } = wantedCertificates(merged, staticConfig);
      for (const e of errors) log.error("ACME domains", { error: e });
      m.setWanted(wanted);
    },
    stop() {
      m.deactivate();
      for (const u of unsubscribe) u();
      return watch?.close() ?? Promise.resolve();
    },
  };
}

/** The cluster key that seals private keys in the KV store, with the previous keys still accepted. */
async function clusterSecretBox(
  staticConfig: StaticConfig,
  env: (name: string) => string | undefined,
  log: Logger,
): Promise<SecretBox> {
  const configured = staticConfig.cluster?.encryptionKey;
  const keyText = configured ?? env(ENCRYPTION_KEY_ENV);
  if (!keyText) {
    throw new Error(
      `ACME in a cluster stores private keys encrypted: set [cluster] encryptionKey or ${ENCRYPTION_KEY_ENV} (32 random bytes, base64)`,
    );
  }
  const box = await SecretBox.fromBase64(
    configured ? "[cluster] encryptionKey" : ENCRYPTION_KEY_ENV,
    keyText,
    previousKeys(staticConfig.cluster?.previousEncryptionKeys, env),
  );
  if (box.previousKeyIds.length) {
    log.info("encryption key rotation: previous keys open old values until re-sealed", {
      keyId: box.keyId,
      previousKeyIds: box.previousKeyIds,
    });
  }
  return box;
}

/** Previous encryption keys from `[cluster] previousEncryptionKeys` and the env var (comma-separated). */
export function previousKeys(
  configured: string[] | undefined,
  env: (name: string) => string | undefined,
): KeySource[] {
  const fromConfig = (configured ?? []).map((base64Key, i) => ({
    where: `[cluster] previousEncryptionKeys[${i}]`,
    base64Key,
  }));
  const fromEnv = (env(PREVIOUS_ENCRYPTION_KEYS_ENV) ?? "").split(",").map((k) => k.trim())
    .filter(Boolean).map((base64Key, i) => ({
      where: `${PREVIOUS_ENCRYPTION_KEYS_ENV} (entry ${i})`,
      base64Key,
    }));
  return [...fromConfig, ...fromEnv];
}

/** Certificates from `tls.certificates`, in the same shape as ACME's, for the API and metrics. */
export function fileCertificateViews(store: CertificateStore, nowMs = Date.now()): CertificateView[] {
  return store.certificates("file").map((c) => ({
    resolver: "file",
    domains: c.names,
    issuer: c.issuer,
    serial: leafSerial(c.certPem),
    notAfter: c.notAfter.toISOString(),
    daysLeft: Math.floor((c.notAfter.getTime() - nowMs) / 86_400_000),
    state: "valid" as const,
    failures: 0,
    routers: [],
  }));
}
