/**
 * How optional subsystems (KV, cluster, TLS/ACME, metrics, dashboard) plug
 * into a running instance without the server knowing their insides: each
 * contributes internal services and routers, observes requests and reloads,
 * may provide the TLS listener, and takes part in shutdown.
 *
 * @module
 */

import type { CertificateStore } from "../tls/store.ts";
import type { EntryPointConfig, RouterConfig, StaticConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { ConnectionInfo, RouterGeneration } from "../router/build.ts";
import type { Service } from "../services/types.ts";
import type { InstanceState } from "../api/state.ts";
import type { ReloadStatus } from "./config_watcher.ts";
import type { EntryPointServing } from "./listeners.ts";
import type { Tracer } from "../tracing/tracer.ts";

/** Called once per finished request (access log, metrics). Must not block. */
export type { RequestObserver } from "../router/build.ts";
import type { RequestObserver } from "../router/build.ts";

/** Answers one Web request (HTTP/2) that arrived on an entrypoint. */
export type EntryPointHandler = (request: Request, conn: ConnectionInfo) => Promise<Response>;

/** A bound listener. */
export interface Listener {
  readonly port: number;
  /** A plain entrypoint (TLS on it is relayed), which data-plane workers may also listen on. */
  readonly shareable?: boolean;
  /** Connections accepted so far. */
  accepted?(): number;
  /** Stops accepting, lets in-flight requests finish. */
  shutdown(): Promise<void>;
  /** Closes the listening socket only: connections, engine and TLS side stay (a mode switch). */
  stopAccepting?(): Promise<void>;
  /** Re-reads the current configuration for anything that changes how the port listens. */
  reconsider?(): Promise<void>;
  /** Closes every connection still open (when the grace period is over). */
  closeAll?(): void;
}

/**
 * Starts a TLS listener for an entrypoint, or returns undefined when the
 * entrypoint is plain HTTP (then the plain listener, with its TLS relay, is used).
 */
export type TlsListenerFactory = (
  name: string,
  entryPoint: EntryPointConfig,
  /** The entrypoint's engine and TLS hand-over, limits included. */
  serving: EntryPointServing,
) => Promise<Listener> | undefined;

/**
 * The TLS side of a plain entrypoint: a loopback TLS listener that
 * connections starting with a TLS record are relayed to.
 */
export interface TlsRelay {
  /** The loopback port of the TLS side (started on first use). */
  port(): Promise<number>;
  /** Who the relayed connection from loopback port `localPort` really is. */
  register(localPort: number, info: ConnectionInfo): void;
  unregister(localPort: number): void;
  shutdown(): Promise<void>;
}

export interface ServerExtension {
  readonly name: string;
  internalServices?: ReadonlyMap<string, Service>;
  /** Routers of the `internal` provider, e.g. the ACME HTTP-01 challenge router. */
  internalRouters?: Readonly<Record<string, RouterConfig>>;
  onRequest?: RequestObserver;
  /** `[tracing]`: handed to every router generation. */
  tracer?: Tracer;
  /** After every swap to a new router generation. */
  onApplied?(generation: RouterGeneration): void;
  /** After every accepted or rejected reload. */
  onReload?(status: ReloadStatus): void;
  tlsListener?: TlsListenerFactory;
  /** The certificates TLS is served with (the TLS extension's), for TLS ended elsewhere than its listeners. */
  certificates?: CertificateStore;
  /** The TLS side of an entrypoint that is plain by configuration (same port, first byte decides). */
  tlsRelay?: (name: string, entryPoint: EntryPointConfig, serving: EntryPointServing) => TlsRelay | undefined;
  /** First step of shutdown (e.g. a manager hands over). */
  drain?(): Promise<void>;
  /** Last step of shutdown. */
  stop?(): Promise<void>;
}

/** What an extension factory can see while the instance starts. */
export interface ExtensionContext {
  staticConfig: StaticConfig;
  log: Logger;
  state: InstanceState;
  /** Extensions created before this one, by name (e.g. "kv", "cluster"). */
  earlier: ReadonlyMap<string, ServerExtension>;
}
