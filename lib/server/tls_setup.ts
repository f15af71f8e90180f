/**
 * The TLS and ACME extension (see lib/server/extension.ts): the live
 * certificate store, TLS listeners for TLS entrypoints, static
 * certificates and `tls.options` from the dynamic config, and the ACME
 * certificate resolvers (file storage standalone, KV storage + fenced
 * writes + manager-only ordering in a cluster).
 *
 * Which entrypoints serve TLS (decided when listeners start):
 * - those with `[entryPoints.NAME.http.tls]` in the static config;
 * - those named explicitly in `entryPoints` by a router that has `tls` in
 *   the first applied configuration (Traefik's usual `websecure` pattern).
 * A router added later with `tls` on a plain entrypoint is served only
 * after a restart (it is logged). On a TLS entrypoint, routers without
 * `tls` are not served (as in Traefik); internal routers answer on both.
 *
 * View `state.views.get("certificates")()` returns `CertificateView[]`
 * (lib/acme/manager.ts) for ACME and file certificates, and
 * `state.views.get("acme")()` returns `{ issued, failures, active,
 * failuresByResolver: {RESOLVER: n}, reseal?: {resealed, keyId, errors} }`.
 *
 * @module
 */

import type { ConnectionInfo } from "../engine/connection.ts";
import type { CertificateResolverConfig, EntryPointConfig, RouterConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { MergedConfig } from "../providers/merge.ts";
import type { Service } from "../services/types.ts";
import type { KVWatch } from "../kv/types.ts";
import {
  CHALLENGE_SERVICE,
  ChallengeAnswers,
  type ChallengeSink,
  HTTP01_PREFIX,
} from "../acme/challenges.ts";
import { wantedCertificates } from "../acme/domains.ts";
import {
  CHALLENGE_CHECK_PATH,
  checkOwnListener,
  decodeCheckReply,
  decodeCheckRequest,
  sha256Hex,
} from "../acme/challenge_check.ts";
import { configureCaTrust, type PublishedChallenge, TLS_ALPN_UNSUPPORTED } from "../acme/issuer.ts";
import { KvOrderJournal, type OrderJournal } from "../acme/journal.ts";
import { KvDnsRecordJournal } from "../acme/dns/record_journal.ts";
import { KvAcmeStorage } from "../acme/kv_storage.ts";
import { awaitMembers, type Member, type ReadinessReport } from "../acme/readiness.ts";
import { AcmeManager, type CertificateView, leafSerial } from "../acme/manager.ts";
import {
  ENCRYPTION_KEY_ENV,
  type KeySource,
  PREVIOUS_ENCRYPTION_KEYS_ENV,
  SecretBox,
} from "../acme/secret_box.ts";
import {
  type AccountRecord,
  type AcmeStorage,
  type CertificateRecord,
  FileStorage,
} from "../acme/storage.ts";
import { parseCertificate, type StoredCertificate } from "../tls/certificate.ts";
import {
  configuredCertificates,
  handshakePolicy,
  listenerAlpn,
  unsupportedOptionWarnings,
} from "../tls/config.ts";
import { startTlsListener } from "../tls/listener.ts";
import { generateSelfSigned } from "../tls/self_signed.ts";
import { CertificateStore } from "../tls/store.ts";
import type { ExtensionContext, ServerExtension } from "./extension.ts";
import type { ClusterExtension } from "./cluster_setup.ts";
import type { KVExtension } from "./kv_setup.ts";

/** Stands in for the default certificate until a TLS listener needs one; never served. */
const NO_DEFAULT_YET: StoredCertificate = {
  certPem: "",
  keyPem: "",
  names: [],
  issuer: "",
  notBefore: new Date(0),
  notAfter: new Date(0),
  source: "default",
};

/** What other modules can reach through `context.earlier.get("tls")`. */
export interface TlsExtension extends ServerExtension {
  readonly name: "tls";
  readonly store: CertificateStore;
  readonly acme?: AcmeManager;
  readonly challenges: ChallengeAnswers;
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

/** Lower-level inputs, so tests can pass a store and cluster directly. */
export interface StartTlsOptions {
  context: ExtensionContext;
  kv?: Pick<KVExtension, "store" | "rootKey">;
  cluster?:
    & Pick<ClusterExtension, "on" | "fencedWrite" | "isManager">
    & Partial<
      Pick<
        ClusterExtension,
        "view" | "leaderRecord" | "nodeId" | "peers" | "peerRoute" | "peerCall"
      >
    >;
  env?: (name: string) => string | undefined;
  now?: () => Date;
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Builds the extension; the factory below only picks its inputs from the context. */
export async function startTls(options: StartTlsOptions): Promise<TlsExtension> {
  const { staticConfig, state } = options.context;
  const log: Logger = options.context.log.child("tls");
  const env = options.env ?? readEnv;
  // The self-signed default certificate is made when a TLS listener first
  // needs it: generating it loads @peculiar/x509, about 12 MB of RSS that an
  // instance without TLS, or with its own default certificate, never needs
  // (issue 9). Listeners start only once the store holds a real default.
  let selfSigned: StoredCertificate | undefined;
  let configuredDefault: StoredCertificate | undefined;
  let makingSelfSigned: Promise<StoredCertificate> | undefined;
  const useSelfSigned = async (): Promise<void> => {
    makingSelfSigned ??= generateSelfSigned().then((g) =>
      selfSigned = parseCertificate("default certificate", g.certPem, g.keyPem, "default")
    );
    const made = await makingSelfSigned;
    if (!configuredDefault) store.setDefault(made);
  };
  const store = new CertificateStore(NO_DEFAULT_YET);
  const answers = new ChallengeAnswers(store);
  const resolvers = staticConfig.certificatesResolvers ?? {};
  const hasResolvers = Object.keys(resolvers).length > 0;

  // Orders must not start before the challenge entrypoints listen, or the
  // CA's validation (which follows within milliseconds) finds nothing.
  let tlsStarted!: () => void;
  const tlsListening = new Promise<void>((r) => (tlsStarted = r));
  const listenersReady = async () => {
    const waits: Promise<unknown>[] = [];
    for (const r of Object.values(staticConfig.certificatesResolvers ?? {})) {
      const ep = r.acme.httpChallenge && staticConfig.entryPoints[r.acme.httpChallenge.entryPoint];
      if (ep) waits.push(waitForTcp(ep.hostname || "127.0.0.1", ep.port));
      if (r.acme.tlsChallenge) waits.push(tlsListening);
    }
    await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 10_000))]);
  };
  const activateWhenListening = (m: AcmeManager) =>
    listenersReady().then(() => m.activate()).catch((err) =>
      log.error("ACME activation failed", { error: (err as Error).message })
    );

  let manager: AcmeManager | undefined;
  let watch: KVWatch | undefined;
  const unsubscribe: (() => void)[] = [];
  let activateStandalone = false;

  if (hasResolvers) {
    for (const [name, r] of Object.entries(resolvers)) {
      if (r.acme.tlsChallenge && !r.acme.httpChallenge && !r.acme.dnsChallenge) {
        log.error("certificatesResolvers." + name + ".acme.tlsChallenge", {
          error: TLS_ALPN_UNSUPPORTED,
        });
      }
    }
    await configureCaTrust(Object.values(resolvers).map((r) => r.acme), env);
    const clustered = Boolean(
      options.cluster && options.kv && (options.cluster.view?.().clustered ?? true),
    );
    let storage: AcmeStorage;
    let sink: ChallengeSink = answers;
    let journal: OrderJournal | undefined;
    let dnsRecords: KvDnsRecordJournal | undefined;
    let gate: ((r: string, c: PublishedChallenge[]) => Promise<ReadinessReport>) | undefined;
    if (clustered) {
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
      const cluster = options.cluster!;
      const kvStorage = new KvAcmeStorage(
        options.kv!.store,
        options.kv!.rootKey,
        box,
        (ops) => cluster.fencedWrite(ops),
      );
      storage = kvStorage;
      sink = kvStorage.challengeSink(answers);
      journal = new KvOrderJournal(
        options.kv!.store,
        options.kv!.rootKey,
        box,
        (ops) => cluster.fencedWrite(ops),
        (c) => kvStorage.encodeCertificate(c),
      );
      dnsRecords = new KvDnsRecordJournal(
        options.kv!.store,
        options.kv!.rootKey,
        (ops) => cluster.fencedWrite(ops),
      );
      gate = readinessGate(staticConfig.entryPoints, resolvers, cluster, log.child("acme"));
      unsubscribe.push(serveChallengeChecks(staticConfig.entryPoints, resolvers, cluster));
      watch = kvStorage.watch((resolver, record, error) => {
        if (error) {
          log.error("certificate in the KV store is unusable; keeping the others", {
            resolver,
            error,
          });
        } else if (record) manager!.install(resolver, record);
      }, answers);
    } else {
      storage = new ResolverFiles(resolvers);
    }
    manager = new AcmeManager({
      resolvers,
      storage,
      challenges: sink,
      tlsStore: store,
      log: log.child("acme"),
      now: options.now,
      env,
      journal,
      dnsRecords,
      gate,
      identity: () => ({
        term: options.cluster?.leaderRecord?.()?.term ?? 0,
        nodeId: options.cluster?.nodeId?.() ?? "standalone",
      }),
    });
    if (options.cluster) {
      unsubscribe.push(
        options.cluster.on("becameManager", () => void activateWhenListening(manager!)),
      );
      unsubscribe.push(options.cluster.on("lostManager", () => manager!.deactivate()));
      if (clustered) await manager.loadStored();
    } else {
      activateStandalone = true;
    }
  }

  let merged: MergedConfig | undefined;
  let lastFileKey = "";
  let lastWarnings = "";
  let listenersStarted = false;

  const challengeService: Service = answers.service();
  const internalServices = new Map<string, Service>(
    hasResolvers ? [[CHALLENGE_SERVICE, challengeService]] : [],
  );
  const internalRouters: Record<string, RouterConfig> = hasResolvers
    ? {
      "acme-http": {
        rule: `PathPrefix(\`${HTTP01_PREFIX}\`)`,
        service: CHALLENGE_SERVICE,
        entryPoints: [],
        middlewares: [],
        priority: Number.MAX_SAFE_INTEGER,
      },
    }
    : {};

  const fileViews = (): CertificateView[] => {
    const now = Date.now();
    return store.certificates("file").map((c) => ({
      resolver: "file",
      domains: c.names,
      issuer: c.issuer,
      serial: leafSerial(c.certPem),
      notAfter: c.notAfter.toISOString(),
      daysLeft: Math.floor((c.notAfter.getTime() - now) / 86_400_000),
      state: "valid" as const,
      failures: 0,
      routers: [],
    }));
  };
  state.views.set("certificates", () => [...(manager?.view() ?? []), ...fileViews()]);
  state.views.set(
    "acme",
    () => ({
      issued: manager?.issued ?? 0,
      failures: manager?.failures ?? 0,
      active: manager?.active ?? false,
      failuresByResolver: Object.fromEntries(
        Object.keys(resolvers).map((r) => [r, manager?.failuresByResolver.get(r) ?? 0]),
      ),
      reseal: manager?.reseal,
    }),
  );

  const applyTls = (m: MergedConfig) => {
    const { certificates, defaultCertificate, errors } = configuredCertificates(m);
    const key = certificates.map((c) => c.certPem).join("|") + "#" +
      (defaultCertificate?.certPem ?? "");
    if (key !== lastFileKey) {
      lastFileKey = key;
      store.replaceSource("file", certificates);
      configuredDefault = defaultCertificate;
      if (defaultCertificate) store.setDefault(defaultCertificate);
      else if (selfSigned) store.setDefault(selfSigned);
      else if (listenersStarted) {
        useSelfSigned().catch((err) =>
          log.error("default certificate", { error: (err as Error).message })
        );
      }
    }
    for (const e of errors) log.error("TLS certificate skipped", { error: e });
    const warnings = unsupportedOptionWarnings(m);
    if (warnings.join() !== lastWarnings) {
      lastWarnings = warnings.join();
      for (const w of warnings) log.warn("TLS option not enforced", { option: w });
    }
    store.setPolicy(handshakePolicy(m));
  };

  return {
    name: "tls",
    store,
    certificates: store,
    acme: manager,
    challenges: answers,
    internalServices,
    internalRouters,
    onApplied(generation) {
      merged = generation.merged;
      applyTls(merged);
      if (manager) {
        const { wanted, errors } = wantedCertificates(merged, staticConfig);
        for (const e of errors) log.error("ACME domains", { error: e });
        manager.setWanted(wanted);
        if (activateStandalone) {
          activateStandalone = false;
          void activateWhenListening(manager);
        }
      }
    },
    tlsListener(name: string, entryPoint: EntryPointConfig, serving) {
      // Only an entrypoint with `http.tls` is TLS through and through; any
      // other one serves TLS routers through its relay (see tlsRelay).
      if (!entryPoint.http.tls) return undefined;
      listenersStarted = true;
      const defaultReady = configuredDefault || selfSigned ? Promise.resolve() : useSelfSigned();
      const started = defaultReady.then(() =>
        startTlsListener({
          hostname: entryPoint.hostname || "0.0.0.0",
          port: entryPoint.port,
          store,
          connections: serving.tls,
          alpnProtocols: listenerAlpn(merged),
          onEvent: (event, fields) => log.debug(event, { entryPoint: name, ...fields }),
          onError: (error) => log.error("TLS listener", { entryPoint: name, error: String(error) }),
        })
      );
      started.then(() => tlsStarted(), () => {});
      return started.then((l) => ({
        get port() {
          return l.port;
        },
        stopAccepting: () => l.stopAccepting(),
        shutdown: () => l.shutdown(),
        closeAll: () => serving.engine.closeAll(),
      }));
    },
    tlsRelay(name: string, _entryPoint: EntryPointConfig, serving) {
      const real = new Map<number, ConnectionInfo>();
      const waiting = new Map<number, (info: ConnectionInfo) => void>();
      let started: Promise<{ port: number; shutdown(): Promise<void> }> | undefined;
      const connections = {
        async serve(conn: Deno.Conn, _info: ConnectionInfo) {
          // The accept can run before the relay's connect continuation has
          // registered the port: then wait for the registration (briefly).
          const port = (conn.remoteAddr as Deno.NetAddr).port;
          let info = real.get(port);
          if (!info) {
            let timer: ReturnType<typeof setTimeout> | undefined;
            info = await new Promise<ConnectionInfo | undefined>((resolve) => {
              waiting.set(port, resolve);
              timer = setTimeout(() => resolve(undefined), 1000);
            });
            clearTimeout(timer);
            waiting.delete(port);
          }
          // Only the relay may connect here; anything else is dropped.
          if (!info) {
            try {
              conn.close();
            } catch { /* closed */ }
            return;
          }
          serving.tls.serve(conn, info);
        },
        shutdown: () => serving.tls.shutdown(),
      };
      return {
        port() {
          listenersStarted = true;
          started ??= (configuredDefault || selfSigned ? Promise.resolve() : useSelfSigned()).then(() =>
            startTlsListener({
              hostname: "127.0.0.1",
              port: 0,
              store,
              connections,
              alpnProtocols: listenerAlpn(merged),
              onEvent: (event, fields) => log.debug(event, { entryPoint: name, ...fields }),
              onError: (error) => log.error("TLS listener", { entryPoint: name, error: String(error) }),
            })
          );
          return started.then((l) => l.port);
        },
        register: (localPort, info) => {
          real.set(localPort, info);
          waiting.get(localPort)?.(info);
        },
        unregister: (localPort) => void real.delete(localPort),
        shutdown: async () => {
          if (started) await (await started).shutdown();
        },
      };
    },
    stop() {
      manager?.deactivate();
      for (const u of unsubscribe) u();
      return watch?.close() ?? Promise.resolve();
    },
  };
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

/** `http://host:port` of this node's HTTP-01 entrypoint for `resolver`, as a client dials it. */
function challengeBase(
  entryPoints: Record<string, EntryPointConfig>,
  resolver: CertificateResolverConfig | undefined,
): string | undefined {
  const name = resolver?.acme.httpChallenge?.entryPoint;
  const ep = name ? entryPoints[name] : undefined;
  if (!ep) return undefined;
  const host = !ep.hostname || ep.hostname === "0.0.0.0"
    ? "127.0.0.1"
    : ep.hostname === "::"
    ? "[::1]"
    : ep.hostname.includes(":")
    ? `[${ep.hostname}]`
    : ep.hostname;
  return `http://${host}:${ep.port}`;
}

/** Every node answers the manager's readiness checks with a request to its own listener. */
function serveChallengeChecks(
  entryPoints: Record<string, EntryPointConfig>,
  resolvers: Record<string, CertificateResolverConfig>,
  cluster: NonNullable<StartTlsOptions["cluster"]>,
): () => void {
  if (!cluster.peerRoute) return () => {};
  const nodeId = cluster.nodeId?.() ?? "unknown";
  return cluster.peerRoute(CHALLENGE_CHECK_PATH, async (body) => {
    const request = decodeCheckRequest(body);
    const base = challengeBase(entryPoints, resolvers[request.resolver]);
    if (!base) {
      return {
        nodeId,
        ok: false,
        detail: `resolver ${request.resolver} has no httpChallenge entrypoint here`,
      };
    }
    const reason = await checkOwnListener(base, request.tokens);
    return reason ? { nodeId, ok: false, detail: reason } : { nodeId, ok: true };
  });
}

/** How often an unconfirmed member is asked again, and how long one check may take. */
const GATE_INTERVAL_MS = 100;
const GATE_CHECK_TIMEOUT_MS = 1500;

/**
 * The manager's readiness gate: this node and every configured peer must
 * confirm their own HTTP-01 listener serves the tokens, within the
 * resolver's `clusterReadyTimeout`. Logs the outcome, naming absent members.
 */
function readinessGate(
  entryPoints: Record<string, EntryPointConfig>,
  resolvers: Record<string, CertificateResolverConfig>,
  cluster: NonNullable<StartTlsOptions["cluster"]>,
  log: Logger,
): (resolver: string, challenges: PublishedChallenge[]) => Promise<ReadinessReport> {
  return async (resolver, challenges) => {
    const tokens = await Promise.all(challenges.map(async (c) => ({
      token: c.token,
      sha256: await sha256Hex(c.keyAuthorization),
    })));
    const body = JSON.stringify({ resolver, tokens });
    const base = challengeBase(entryPoints, resolvers[resolver]);
    const self: Member = {
      name: cluster.nodeId?.() ?? "self",
      check: async () => {
        const reason = base ? await checkOwnListener(base, tokens) : "no httpChallenge entrypoint";
        return reason ? { ok: false, reason } : { ok: true, nodeId: cluster.nodeId?.() };
      },
    };
    const peers: Member[] = (cluster.peers?.() ?? []).map((peer) => ({
      name: peer,
      check: async () => {
        const reply = decodeCheckReply(
          await cluster.peerCall!(peer, CHALLENGE_CHECK_PATH, body, GATE_CHECK_TIMEOUT_MS),
        );
        return reply.ok
          ? { ok: true, nodeId: reply.nodeId }
          : { ok: false, reason: `${reply.nodeId}: ${reply.detail ?? "not ready"}` };
      },
    }));
    const timeoutMs = resolvers[resolver]?.acme.clusterReadyTimeout ?? 30_000;
    const report = await awaitMembers([self, ...peers], {
      timeoutMs,
      intervalMs: GATE_INTERVAL_MS,
    });
    const domains = challenges.map((c) => c.domain);
    const summary = report.members.map((m) =>
      `${m.nodeId ?? m.name}${m.nodeId && m.nodeId !== m.name ? ` (${m.name})` : ""}: ${
        m.confirmed ? `confirmed after ${m.afterMs} ms` : "absent"
      }`
    ).join("; ");
    for (const m of report.members.filter((m) => !m.confirmed)) {
      log.warn("challenge readiness: member absent, validating without it", {
        member: m.name,
        resolver,
        domains,
        waitedMs: report.waitedMs,
        timeoutMs,
        lastError: m.lastError,
      });
    }
    log.info(
      report.timedOut
        ? "challenge readiness: wait ended at clusterReadyTimeout"
        : "challenge readiness: every member serves the challenge",
      { resolver, domains, waitedMs: report.waitedMs, members: summary },
    );
    return report;
  };
}

/** Resolves once something accepts TCP on `host:port` (port 0: cannot tell; short pause). */
async function waitForTcp(host: string, port: number): Promise<void> {
  if (port === 0) return await new Promise((r) => setTimeout(r, 200));
  const target = host === "0.0.0.0" ? "127.0.0.1" : host;
  for (let i = 0; i < 500; i++) {
    try {
      (await Deno.connect({ hostname: target, port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** The extension factory: TLS serving always; ACME when `certificatesResolvers` is set. */
export async function tlsExtension(
  context: ExtensionContext,
): Promise<ServerExtension | undefined> {
  const kv = context.earlier.get("kv") as KVExtension | undefined;
  const cluster = context.earlier.get("cluster") as ClusterExtension | undefined;
  return await startTls({ context, kv, cluster });
}
