/**
 * The byte-level side of the middleware contract. A middleware whose work
 * is only header and path edits, or an early answer (stripPrefix,
 * addPrefix, headers without CORS/security checks, rateLimit), also
 * registers a {@linkcode FastStep}. A route whose every middleware has one
 * runs on the engine's request representation and never builds a Web
 * `Request`, `Response` or `Headers`; any other route runs the Hono chain.
 * Both paths give the same answers (the middlewares' tests run on both).
 *
 * @module
 */

import type { Exchange } from "../engine/exchange.ts";
import { HeadHeaders } from "../engine/web_request.ts";
import { errorHeadWith } from "../engine/response_head.ts";
import type { ForwardedInfo } from "../proxy/headers.ts";
import type { PorticoMiddleware } from "./types.ts";

/** Request headers as a flat name/value list, edited in place (names lower-case). */
export class FlatHeaders extends HeadHeaders {
  #shared = true; // the engine's list belongs to the parsed head: copy before the first edit

  #own(): string[] {
    if (this.#shared) {
      this.list = this.list.slice();
      this.#shared = false;
    }
    return this.list;
  }

  delete(name: string): void {
    if (this.get(name) === null) return;
    const l = this.#own();
    const kept: string[] = [];
    for (let i = 0; i < l.length; i += 2) if (l[i] !== name) kept.push(l[i], l[i + 1]);
    this.list = kept;
  }

  set(name: string, value: string): void {
    this.delete(name);
    this.#own().push(name, value);
  }

  append(name: string, value: string): void {
    this.#own().push(name, value);
  }
}

/** Response header changes collected on the way in; the outermost middleware's change wins. */
export class ResponseEdits {
  readonly #final = new Map<string, string | null>();

  /** Records this middleware's final say on `name`: a value, or null to remove it. */
  offer(name: string, value: string | null): void {
    if (!this.#final.has(name)) this.#final.set(name, value);
  }

  /** Names to drop from the upstream's response. */
  get dropped(): ReadonlySet<string> {
    return new Set(this.#final.keys());
  }

  /** Header lines to add, each ending in CRLF. */
  get lines(): string {
    let out = "";
    for (const [name, value] of this.#final) if (value !== null) out += `${name}: ${value}\r\n`;
    return out;
  }
}

/** The request as fast steps see and change it. */
export interface FastRequest extends ForwardedInfo {
  readonly exchange: Exchange;
  readonly method: string;
  headers: FlatHeaders;
  /** Path and query as they will go upstream. */
  pathAndQuery: string;
  responseEdits?: ResponseEdits;
}

/** An answer a step gives instead of forwarding. */
export interface FastAnswer {
  status: number;
  bytes: Uint8Array;
}

/** One middleware on the byte-level path: undefined to go on, or an answer. */
export type FastStep = (request: FastRequest) => FastAnswer | undefined | Promise<FastAnswer | undefined>;

const steps = new WeakMap<PorticoMiddleware, FastStep>();

/** Registers `step` as the byte-level twin of `handler`; returns `handler`. */
export function withFastStep(handler: PorticoMiddleware, step: FastStep): PorticoMiddleware {
  steps.set(handler, step);
  return handler;
}

/** The byte-level twin of `handler`, if it has one. */
export function fastStepOf(handler: PorticoMiddleware): FastStep | undefined {
  return steps.get(handler);
}

/** A plain-text answer with extra headers, as `plainResponse` gives on the Web path. */
export function fastAnswer(status: number, headers: Record<string, string>, keepAlive: boolean): FastAnswer {
  return { status, bytes: errorHeadWith(status, headers, !keepAlive) };
}
