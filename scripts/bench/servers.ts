/**
 * Starts the backend and each proxy from the generated configs: proxies on
 * the proxy core, the backend on the load core, each in its own process
 * group (see procs.ts).
 *
 * @module
 */

import {
  backendNginxConf,
  type BenchFiles,
  type BenchPorts,
  caddyConfig,
  haproxyConf,
  haproxyTcpConf,
  nginxProxyConf,
  nginxStreamConf,
  porticoDynamic,
  porticoStatic,
  porticoTcpDynamic,
  porticoTcpStatic,
  type ProxyName,
  type RoutePreset,
  type TcpProxyName,
} from "./configs.ts";
import { type Proc, spawnGroup } from "./procs.ts";

/** Everything needed to start servers for one benchmark run. */
export interface BenchContext {
  ports: BenchPorts;
  files: BenchFiles;
  /** Repository root (Portico's mod.ts lives here). */
  repo: string;
  runAsRoot: boolean;
  /** Core the proxy under test runs on. */
  proxyCpu: number;
  /** Core wrk and the backend share. */
  loadCpu: number;
}

/** Portico's routing for one run. */
export interface PorticoVariant {
  routers: number;
  middlewares: number;
  /** Extra `deno run` flags, e.g. `--cpu-prof`. */
  denoFlags?: string[];
  /** Scenario 1b's middlewares on the route (nginx gets its equivalent). */
  preset?: RoutePreset;
  /** `[server] workers` in the static config; absent leaves the option out. */
  workers?: number | "auto";
  /** More static TOML (e.g. `[tracing]` for scenario otel). */
  staticExtra?: string;
}

let counter = 0;

/** The config files for `proxy`, written under the scratch dir; returns the main config path. */
export async function writeProxyConfig(
  ctx: Pick<BenchContext, "ports" | "files" | "runAsRoot">,
  proxy: ProxyName,
  variant: PorticoVariant = { routers: 1, middlewares: 0 },
): Promise<string> {
  const { ports, files } = ctx;
  const n = ++counter;
  switch (proxy) {
    case "nginx": {
      const path = `${files.dir}/nginx_proxy_${n}.conf`;
      await Deno.writeTextFile(
        path,
        nginxProxyConf(ports, files, { runAsRoot: ctx.runAsRoot, preset: variant.preset }),
      );
      return path;
    }
    case "haproxy": {
      const path = `${files.dir}/haproxy.cfg`;
      await Deno.writeTextFile(path, haproxyConf(ports, files));
      return path;
    }
    case "caddy": {
      const path = `${files.dir}/caddy.json`;
      await Deno.writeTextFile(path, caddyConfig(ports, files));
      return path;
    }
    case "portico": {
      const dynamicFile = `${files.dir}/portico_dynamic_${n}.toml`;
      const staticFile = `${files.dir}/portico_${n}.toml`;
      await Deno.writeTextFile(
        dynamicFile,
        porticoDynamic({
          backendPort: ports.backend,
          routers: variant.routers,
          middlewares: variant.middlewares,
          files,
          preset: variant.preset,
        }),
      );
      await Deno.writeTextFile(
        staticFile,
        porticoStatic(ports, { dynamicFile, workers: variant.workers }) + (variant.staticExtra ?? ""),
      );
      return staticFile;
    }
  }
}

/** The command that runs `proxy` in the foreground with `configPath`. */
export function proxyCommand(
  ctx: Pick<BenchContext, "files">,
  proxy: ProxyName,
  configPath: string,
  denoFlags: string[] = [],
): string[] {
  switch (proxy) {
    case "nginx":
      return [
        "nginx",
        "-p",
        ctx.files.dir,
        "-e",
        `${ctx.files.dir}/nginx_proxy_startup.log`,
        "-c",
        configPath,
      ];
    case "haproxy":
      return ["haproxy", "-db", "-f", configPath];
    case "caddy":
      return ["caddy", "run", "--config", configPath];
    case "portico":
      // --unstable-net: reusePort on Deno.listen (issue 15's `[server] workers`) needs it on
      // Deno 2.9; harmless for a build that does not use it.
      return [
        "deno",
        "run",
        "-A",
        "--unstable-net",
        ...denoFlags,
        "mod.ts",
        `--configFile=${configPath}`,
      ];
  }
}

/** Starts the nginx backend on the load core. */
export async function startBackend(ctx: BenchContext): Promise<Proc> {
  const conf = `${ctx.files.dir}/backend.conf`;
  await Deno.writeTextFile(
    conf,
    backendNginxConf(ctx.ports, ctx.files, { runAsRoot: ctx.runAsRoot }),
  );
  return spawnGroup("backend", [
    "nginx",
    "-p",
    ctx.files.dir,
    "-e",
    `${ctx.files.dir}/backend_startup.log`,
    "-c",
    conf,
  ], {
    cpu: ctx.loadCpu,
    logFile: `${ctx.files.dir}/backend.log`,
  });
}

/**
 * Starts one proxy on the proxy core, listening on `ports` (default: the
 * context's), so several proxies can run at once and take turns under load.
 */
export async function startProxy(
  ctx: BenchContext,
  proxy: ProxyName,
  variant?: PorticoVariant,
  ports: BenchPorts = ctx.ports,
): Promise<Proc> {
  const config = await writeProxyConfig({ ...ctx, ports }, proxy, variant);
  const env: Record<string, string> = {};
  if (proxy === "caddy") {
    // One OS thread running Go code, as the other peers get one worker.
    env.GOMAXPROCS = "1";
    env.HOME = ctx.files.dir;
    env.XDG_DATA_HOME = `${ctx.files.dir}/xdg_data`;
    env.XDG_CONFIG_HOME = `${ctx.files.dir}/xdg_config`;
  }
  return spawnGroup(proxy, proxyCommand(ctx, proxy, config, variant?.denoFlags), {
    cpu: ctx.proxyCpu,
    logFile: `${ctx.files.dir}/${proxy}.log`,
    env,
    cwd: ctx.repo,
  });
}

/**
 * The two yardsticks run beside Portico on plain scenarios, each pinned to
 * the proxy core like every proxy: the Deno floor (`Deno.serve` + Portico's
 * `UpstreamPool`, scripts/bench/floor_proxy.ts) and the JS engine floor
 * (raw `Deno.listen` + `Deno.connect`, scripts/bench/engine_floor.ts).
 */
export const FLOORS = {
  "deno floor": "scripts/bench/floor_proxy.ts",
  "engine floor": "scripts/bench/engine_floor.ts",
} as const;
export type FloorName = keyof typeof FLOORS;

/** The command line of a floor proxy listening on `ports.http` in front of the backend. */
export function floorCommand(floor: FloorName, ports: BenchPorts): string[] {
  return ["deno", "run", "-A", FLOORS[floor], String(ports.http), String(ports.backend)];
}

/** Starts a floor proxy on the proxy core. */
export function startFloor(ctx: BenchContext, floor: FloorName, ports: BenchPorts): Proc {
  return spawnGroup(floor, floorCommand(floor, ports), {
    cpu: ctx.proxyCpu,
    logFile: `${ctx.files.dir}/${floor.replace(" ", "_")}.log`,
    cwd: ctx.repo,
  });
}

/** Starts a TCP floor (scripts/bench/tcp_floor.ts, or tcp_floor_node.ts on node:net) on the proxy core, on `ports.http` in front of `ports.backend`. */
export function startTcpFloor(ctx: BenchContext, ports: BenchPorts, kind: "deno" | "node" = "deno"): Proc {
  const script = kind === "deno" ? "scripts/bench/tcp_floor.ts" : "scripts/bench/tcp_floor_node.ts";
  const command = ["deno", "run", "-A", script, String(ports.http), String(ports.backend)];
  return spawnGroup(`tcp floor ${kind}`, command, {
    cpu: ctx.proxyCpu,
    logFile: `${ctx.files.dir}/tcp_floor_${kind}.log`,
    cwd: ctx.repo,
  });
}

/**
 * The TCP scenario's config for `proxy` in front of the echo backend
 * (`ports.backend`), listening on `ports.http`; returns the main config path.
 */
export async function writeTcpProxyConfig(
  ctx: Pick<BenchContext, "ports" | "files" | "runAsRoot">,
  proxy: TcpProxyName,
): Promise<string> {
  const { ports, files } = ctx;
  const n = ++counter;
  switch (proxy) {
    case "nginx": {
      const path = `${files.dir}/nginx_stream_${n}.conf`;
      await Deno.writeTextFile(path, nginxStreamConf(ports, files, { runAsRoot: ctx.runAsRoot }));
      return path;
    }
    case "haproxy": {
      const path = `${files.dir}/haproxy_tcp_${n}.cfg`;
      await Deno.writeTextFile(path, haproxyTcpConf(ports));
      return path;
    }
    case "portico": {
      const dynamicFile = `${files.dir}/portico_tcp_dynamic_${n}.toml`;
      const staticFile = `${files.dir}/portico_tcp_${n}.toml`;
      await Deno.writeTextFile(dynamicFile, porticoTcpDynamic({ backendPort: ports.backend }));
      await Deno.writeTextFile(staticFile, porticoTcpStatic(ports, { dynamicFile }));
      return staticFile;
    }
  }
}

/** Starts one TCP proxy on the proxy core (see writeTcpProxyConfig for the ports). */
export async function startTcpProxy(
  ctx: BenchContext,
  proxy: TcpProxyName,
  ports: BenchPorts,
  denoFlags: string[] = [],
): Promise<Proc> {
  const config = await writeTcpProxyConfig({ ...ctx, ports }, proxy);
  // One log per start, so a failure's tail is that start's own.
  return spawnGroup(`${proxy} tcp`, proxyCommand(ctx, proxy, config, denoFlags), {
    cpu: ctx.proxyCpu,
    logFile: `${ctx.files.dir}/${proxy}_tcp_${++counter}.log`,
    cwd: ctx.repo,
  });
}
