/**
 * TCP services: where a routed connection goes. A load balancer spreads
 * connections over its servers by smooth weighted round robin; a weighted
 * service spreads them over other TCP services. A server is dialled with
 * its servers transport's `dialTimeout`, over TLS when `tls = true`, and
 * told the client's address with a PROXY header when the service or the
 * transport asks for one.
 *
 * @module
 */

import { withDeadline } from "../deadline.ts";
import type {
  TcpProxyProtocolConfig,
  TcpServersTransportConfig,
  TcpServiceConfig,
} from "../config/types.ts";
import { encodeProxyHeader } from "../engine/proxy_protocol.ts";
import { closeQuietly, writeAll } from "../engine/socket.ts";
import type { Qualified } from "../providers/merge.ts";
import { qualify } from "../providers/merge.ts";
import { SmoothWeightedRoundRobin } from "../services/smooth_wrr.ts";
import { relayTcp, type RelayTally } from "./relay.ts";
import { POSTGRES_SSL_REQUEST } from "./postgres.ts";

/** What the service needs to know of the client connection. */
export interface TcpClient {
  conn: Deno.Conn;
  /** Bytes already read from the client (a sniffed ClientHello or first bytes), sent first. */
  initial: Uint8Array;
  clientIp: string;
  clientPort: number;
  /** The address and port the client connected to. */
  localIp: string;
  localPort: number;
  /** The client opened with a Postgres SSLRequest that Portico answered: replay it to the backend. */
  postgresSslRequest?: boolean;
}

/** One backend address with the transport used to reach it. */
interface TcpServer {
  address: string;
  hostname: string;
  port: number;
  tls: boolean;
  transport: ResolvedTransport;
  proxyProtocol?: TcpProxyProtocolConfig;
  terminationDelay: number;
}

interface ResolvedTransport {
  dialTimeout: number;
  /** Above 0: TCP keep-alive on (Deno leaves the interval to the OS); below 0: off; 0: the OS default. */
  dialKeepAlive: number;
  terminationDelay: number;
  proxyProtocol?: TcpProxyProtocolConfig;
  tls?: { serverName?: string; caCerts?: string[]; cert?: string; key?: string };
}

/** A built TCP service. */
export interface TcpService {
  readonly name: string;
  /** The server the next connection goes to, or undefined when there is none. */
  pick(): TcpServer | undefined;
}

/** Why a connection could not reach its backend. */
export class TcpDialError extends Error {}

const DEFAULT_TRANSPORT: TcpServersTransportConfig = {
  dialTimeout: 30_000,
  dialKeepAlive: 15_000,
  terminationDelay: 100,
  tls: undefined,
};

/** `host:port` → parts; IPv6 hosts come in brackets. */
function splitAddress(address: string): { hostname: string; port: number } {
  const colon = address.lastIndexOf(":");
  let hostname = address.slice(0, colon);
  if (hostname.startsWith("[")) hostname = hostname.slice(1, -1);
  return { hostname, port: Number(address.slice(colon + 1)) };
}

function resolveTransport(name: string, config: TcpServersTransportConfig): ResolvedTransport {
  const tls = config.tls;
  if (tls?.insecureSkipVerify) {
    throw new Error(
      `TCP servers transport "${name}": insecureSkipVerify is not possible with Deno's TLS client; give the backend's CA in rootCAs`,
    );
  }
  if (tls && tls.serverName !== undefined && tls.certificates.length > 0) {
    throw new Error(
      `TCP servers transport "${name}": serverName with a client certificate is not possible on Deno 2.9.6`,
    );
  }
  const read = (file: string, key: string) => {
    try {
      return Deno.readTextFileSync(file);
    } catch (err) {
      throw new Error(
        `TCP servers transport "${name}": cannot read ${key} ${file}: ${(err as Error).message}`,
      );
    }
  };
  return {
    dialTimeout: config.dialTimeout,
    dialKeepAlive: config.dialKeepAlive,
    terminationDelay: config.terminationDelay,
    proxyProtocol: config.proxyProtocol,
    tls: tls && {
      serverName: tls.serverName,
      caCerts: tls.rootCAs.length ? tls.rootCAs.map((f) => read(f, "rootCAs")) : undefined,
      cert: tls.certificates[0] && read(tls.certificates[0].certFile, "certFile"),
      key: tls.certificates[0] && read(tls.certificates[0].keyFile, "keyFile"),
    },
  };
}

class LoadBalancer implements TcpService {
  readonly #wrr: SmoothWeightedRoundRobin<TcpServer>;
  constructor(readonly name: string, servers: { item: TcpServer; weight: number }[]) {
    this.#wrr = new SmoothWeightedRoundRobin(servers);
  }
  pick(): TcpServer | undefined {
    return this.#wrr.next(() => true);
  }
}

class Weighted implements TcpService {
  readonly #wrr: SmoothWeightedRoundRobin<TcpService>;
  constructor(readonly name: string, children: { service: TcpService; weight: number }[]) {
    this.#wrr = new SmoothWeightedRoundRobin(
      children.map((c) => ({ item: c.service, weight: c.weight })),
    );
  }
  pick(): TcpServer | undefined {
    return this.#wrr.next(() => true)?.pick();
  }
}

/**
 * Builds every TCP service; a bad one is left out with its error, the
 * others are built.
 */
export function buildTcpServices(
  configs: ReadonlyMap<string, Qualified<TcpServiceConfig>>,
  transports: ReadonlyMap<string, Qualified<TcpServersTransportConfig>>,
): { services: Map<string, TcpService>; errors: Map<string, string> } {
  const services = new Map<string, TcpService>();
  const errors = new Map<string, string>();
  const resolved = new Map<string, ResolvedTransport>();
  const transportFor = (ref: string | undefined, provider: string): ResolvedTransport => {
    if (ref === undefined) return resolveTransport("default", DEFAULT_TRANSPORT);
    const name = qualify(ref, provider);
    const known = resolved.get(name);
    if (known) return known;
    const entry = transports.get(name);
    if (!entry) throw new Error(`TCP servers transport "${name}" does not exist`);
    const built = resolveTransport(name, entry.config);
    resolved.set(name, built);
    return built;
  };
  const building: string[] = [];
  const build = (name: string): TcpService => {
    const done = services.get(name);
    if (done) return done;
    if (errors.has(name)) throw new Error(errors.get(name));
    const entry = configs.get(name);
    if (!entry) throw new Error(`TCP service "${name}" does not exist`);
    if (building.includes(name)) {
      throw new Error(
        `TCP service "${name}" is part of a cycle: ${[...building, name].join(" → ")}`,
      );
    }
    building.push(name);
    try {
      let service: TcpService;
      if ("loadBalancer" in entry.config) {
        const lb = entry.config.loadBalancer;
        const transport = transportFor(lb.serversTransport, entry.provider);
        const servers = lb.servers.map((s) => ({
          weight: s.weight,
          item: {
            address: s.address,
            ...splitAddress(s.address),
            tls: s.tls,
            transport,
            proxyProtocol: transport.proxyProtocol ?? lb.proxyProtocol,
            terminationDelay: lb.serversTransport === undefined && lb.terminationDelay !== undefined
              ? lb.terminationDelay
              : transport.terminationDelay,
          } satisfies TcpServer,
        }));
        service = new LoadBalancer(name, servers);
      } else {
        const children = entry.config.weighted.services.map((c) => ({
          service: build(qualify(c.name, entry.provider)),
          weight: c.weight,
        }));
        service = new Weighted(name, children);
      }
      services.set(name, service);
      return service;
    } catch (err) {
      const message = `TCP service "${name}": ${
        (err as Error).message.replace(/^TCP service "[^"]+": /, "")
      }`;
      if (building[building.length - 1] === name) errors.set(name, message);
      throw new Error(message);
    } finally {
      building.pop();
    }
  };
  for (const name of configs.keys()) {
    try {
      build(name);
    } catch { /* recorded */ }
  }
  return { services, errors };
}

async function dial(server: TcpServer): Promise<Deno.Conn> {
  const { hostname, port } = server;
  const tls = server.transport.tls;
  // The handshake counts against the dial timeout, as Go's dialer counts it.
  const handshaken = (c: Deno.TlsConn) =>
    c.handshake().then(() => c, (err) => {
      closeQuietly(c);
      throw err;
    });
  const connecting: Promise<Deno.Conn> = !server.tls
    ? Deno.connect({ hostname, port })
    : tls?.serverName !== undefined
    ? Deno.connect({ hostname, port }).then((tcp) =>
      Deno.startTls(tcp, { hostname: tls.serverName!, caCerts: tls.caCerts })
    )
    : Deno.connectTls({
      hostname,
      port,
      caCerts: tls?.caCerts,
      ...(tls?.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    }).then(handshaken);
  try {
    const conn = await withDeadline(
      connecting,
      server.transport.dialTimeout,
      () => new TcpDialError(`dial ${server.address} timed out`),
    );
    (conn as Deno.TcpConn).setNoDelay?.(true);
    const keepAlive = server.transport.dialKeepAlive;
    if (keepAlive !== 0) (conn as Deno.TcpConn).setKeepAlive?.(keepAlive > 0);
    return conn;
  } catch (err) {
    connecting.then((c) => c.close(), () => {});
    throw err instanceof TcpDialError
      ? err
      : new TcpDialError(`dial ${server.address}: ${(err as Error).message}`);
  }
}

/**
 * Connects the client to the service's next server and relays until both
 * sides are done, adding the bytes carried to `tally`; rejects with a
 * {@linkcode TcpDialError} when the backend cannot be reached (the client
 * is closed either way).
 */
export async function serveTcp(service: TcpService, client: TcpClient, tally: RelayTally): Promise<void> {
  const server = service.pick();
  if (!server) {
    closeQuietly(client.conn);
    throw new TcpDialError(`TCP service "${service.name}" has no server`);
  }
  let backend: Deno.Conn;
  try {
    backend = await dial(server);
  } catch (err) {
    closeQuietly(client.conn);
    throw err;
  }
  try {
    if (server.proxyProtocol) {
      await writeAll(
        backend,
        encodeProxyHeader(server.proxyProtocol.version, {
          source: { address: client.clientIp, port: client.clientPort },
          destination: { address: client.localIp, port: client.localPort },
        }),
      );
    }
    if (client.postgresSslRequest) await askPostgresForTls(backend, server.address);
    if (client.initial.length) await writeAll(backend, client.initial);
  } catch (err) {
    closeQuietly(backend);
    closeQuietly(client.conn);
    throw new TcpDialError(`write to ${server.address}: ${(err as Error).message}`);
  }
  await relayTcp(client.conn, backend, server.terminationDelay, tally);
}

/** Sends the backend the SSLRequest the client sent, and takes its one-byte answer, which must be yes. */
async function askPostgresForTls(backend: Deno.Conn, address: string): Promise<void> {
  await writeAll(backend, POSTGRES_SSL_REQUEST);
  const answer = new Uint8Array(1);
  const n = await backend.read(answer);
  if (n !== 1 || answer[0] !== 0x53) throw new Error(`Postgres at ${address} refused TLS`);
}
