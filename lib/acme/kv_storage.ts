/**
 * ACME state in the KV store for a cluster: one key per certificate (no
 * blob that grows with the number of domains), the account, and the
 * challenge answers. Private keys are sealed with AES-256-GCM
 * ({@linkcode SecretBox}). Every write goes through `write`, which is the
 * cluster's fenced write, so a deposed manager's write fails in the store.
 *
 * Layout under `ROOT/acme/`:
 * - `RESOLVER/account`: `{email, url, key}` (key sealed)
 * - `RESOLVER/certificates/MAIN`: `{main, sans, certificate, key}` (key sealed)
 * - `challenges/http/TOKEN`: the key authorization
 * - `challenges/alpn/DOMAIN`: `{certificate, key}` (short-lived, not secret)
 *
 * @module
 */

import type { KVOperation, KVStore, KVWatch } from "../kv/types.ts";
import type { KeyPair } from "../tls/store.ts";
import type { ChallengeAnswers, ChallengeSink } from "./challenges.ts";
import { sealedKeyId, type SecretBox } from "./secret_box.ts";
import type { AccountRecord, AcmeStorage, CertificateRecord, ResealReport } from "./storage.ts";

/** Applies operations atomically (the cluster's fenced write). */
export type KVWriter = (operations: KVOperation[]) => Promise<void>;

export class KvAcmeStorage implements AcmeStorage {
  constructor(
    private readonly store: KVStore,
    private readonly root: string,
    private readonly box: SecretBox,
    private readonly write: KVWriter,
  ) {}

  get prefix(): string {
    return `${this.root}/acme/`;
  }
  accountKey(resolver: string): string {
    return `${this.prefix}${resolver}/account`;
  }
  certificateKey(resolver: string, main: string): string {
    return `${this.prefix}${resolver}/certificates/${main}`;
  }

  async loadAccount(resolver: string): Promise<AccountRecord | undefined> {
    const key = this.accountKey(resolver);
    const entry = await this.store.get(key);
    if (!entry) return undefined;
    const raw = JSON.parse(entry.value) as { email?: string; url?: string; key: string };
    return {
      email: raw.email,
      url: raw.url,
      keyPem: await this.box.open(`KV key ${key}`, raw.key),
    };
  }

  async saveAccount(resolver: string, account: AccountRecord): Promise<void> {
    const value = await this.encodeAccount(account);
    await this.write([{ kind: "put", key: this.accountKey(resolver), value }]);
  }

  /** Decodes one certificate key's value; throws naming the key. */
  async decode(key: string, value: string): Promise<CertificateRecord> {
    let raw: { main: string; sans?: string[]; certificate: string; key: string };
    try {
      raw = JSON.parse(value);
    } catch {
      throw new Error(`KV key ${key}: not valid JSON`);
    }
    if (
      typeof raw.main !== "string" || typeof raw.certificate !== "string" ||
      typeof raw.key !== "string"
    ) {
      throw new Error(`KV key ${key}: expected {main, sans, certificate, key}`);
    }
    return {
      main: raw.main,
      sans: raw.sans ?? [],
      certPem: raw.certificate,
      keyPem: await this.box.open(`KV key ${key}`, raw.key),
    };
  }

  async loadCertificates(
    resolver: string,
  ): Promise<{ certificates: CertificateRecord[]; errors: string[] }> {
    const { entries } = await this.store.list(`${this.prefix}${resolver}/certificates/`);
    const certificates: CertificateRecord[] = [];
    const errors: string[] = [];
    for (const e of entries) {
      try {
        certificates.push(await this.decode(e.key, e.value));
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    return { certificates, errors };
  }

  async saveCertificate(resolver: string, c: CertificateRecord): Promise<void> {
    const value = await this.encodeCertificate(c);
    await this.write([{ kind: "put", key: this.certificateKey(resolver, c.main), value }]);
  }

  /** The stored value of a certificate (private key sealed). */
  async encodeCertificate(c: CertificateRecord): Promise<string> {
    return JSON.stringify({
      main: c.main,
      sans: c.sans,
      certificate: c.certPem,
      key: await this.box.seal(c.keyPem),
    });
  }

  /** The stored value of an account (private key sealed). */
  async encodeAccount(account: AccountRecord): Promise<string> {
    return JSON.stringify({
      email: account.email,
      url: account.url,
      key: await this.box.seal(account.keyPem),
    });
  }

  /**
   * Re-seals, with the current key, every account and certificate private
   * key sealed with a previous key. Writes go through the fenced write, in
   * transactions of at most {@linkcode RESEAL_BATCH} keys (etcd allows 128
   * operations per transaction). Each write is a put of the value just read
   * with only the sealed key replaced, so the caller must not be storing
   * certificates at the same time (the manager calls it before ordering).
   */
  async reseal(): Promise<ResealReport> {
    const { entries } = await this.store.list(this.prefix);
    const errors: string[] = [];
    const ops: KVOperation[] = [];
    const owned = new RegExp(`^${escape(this.prefix)}[^/]+/(account|certificates/.+)$`);
    for (const e of entries) {
      if (!owned.test(e.key) || e.key.startsWith(`${this.prefix}challenges/`)) continue;
      let raw: Record<string, unknown>;
      try {
        raw = JSON.parse(e.value);
      } catch {
        errors.push(`KV key ${e.key}: not valid JSON; left as it is`);
        continue;
      }
      if (typeof raw.key !== "string" || this.box.isCurrent(raw.key)) continue;
      try {
        const plain = await this.box.open(`KV key ${e.key}`, raw.key);
        raw.key = await this.box.seal(plain);
        ops.push({ kind: "put", key: e.key, value: JSON.stringify(raw) });
      } catch (err) {
        errors.push(`${(err as Error).message}; left as it is`);
      }
    }
    for (let i = 0; i < ops.length; i += RESEAL_BATCH) {
      await this.write(ops.slice(i, i + RESEAL_BATCH));
    }
    return { resealed: ops.length, keyId: this.box.keyId, errors };
  }

  /** Key ids of every sealed value under the prefix (tests, diagnostics). */
  async sealedKeyIds(): Promise<Map<string, string | undefined>> {
    const { entries } = await this.store.list(this.prefix);
    const out = new Map<string, string | undefined>();
    for (const e of entries) {
      try {
        const raw = JSON.parse(e.value) as { key?: unknown };
        if (typeof raw.key === "string") out.set(e.key, sealedKeyId(raw.key));
      } catch {
        // not a sealed record (challenge answers, damaged entries)
      }
    }
    return out;
  }

  /**
   * Mirrors certificates and challenge answers from the store on every node:
   * `onCertificate` gets each certificate put (or an error naming the key),
   * challenge answers go straight into `answers`.
   */
  watch(
    onCertificate: (
      resolver: string,
      record: CertificateRecord | undefined,
      error?: string,
    ) => void,
    answers: ChallengeAnswers,
  ): KVWatch {
    const certRe = new RegExp(`^${escape(this.prefix)}([^/]+)/certificates/`);
    const httpPrefix = `${this.prefix}challenges/http/`;
    const alpnPrefix = `${this.prefix}challenges/alpn/`;
    let chain = Promise.resolve();
    const handle = async (kind: "put" | "delete", key: string, value?: string) => {
      const m = certRe.exec(key);
      if (m && kind === "put") {
        try {
          onCertificate(m[1], await this.decode(key, value!));
        } catch (err) {
          onCertificate(m[1], undefined, (err as Error).message);
        }
      } else if (key.startsWith(httpPrefix)) {
        const token = key.slice(httpPrefix.length);
        if (kind === "put") answers.http.set(token, value!);
        else answers.http.delete(token);
      } else if (key.startsWith(alpnPrefix)) {
        const domain = key.slice(alpnPrefix.length);
        if (kind === "put") {
          const raw = JSON.parse(value!) as { certificate: string; key: string };
          await answers.putAlpn(domain, { cert: raw.certificate, key: raw.key });
        } else await answers.removeAlpn(domain);
      }
    };
    answers.fallback = async (token) => (await this.store.get(`${httpPrefix}${token}`))?.value;
    return this.store.watch(this.prefix, {
      onEvents: (events) => {
        chain = chain.then(async () => {
          for (const ev of events) {
            if (ev.kind === "reset") {
              for (const e of ev.entries) await handle("put", e.key, e.value);
            } else await handle(ev.kind, ev.key, ev.kind === "put" ? ev.value : undefined);
          }
        }).catch(() => {});
      },
    });
  }

  /** Challenge answers published to the store (and to this node at once). */
  challengeSink(local: ChallengeAnswers): ChallengeSink {
    const http = (t: string) => `${this.prefix}challenges/http/${t}`;
    const alpn = (d: string) => `${this.prefix}challenges/alpn/${d}`;
    return {
      putHttp: async (token, keyAuthorization) => {
        await local.putHttp(token, keyAuthorization);
        await this.write([{ kind: "put", key: http(token), value: keyAuthorization }]);
      },
      removeHttp: async (token) => {
        await local.removeHttp(token);
        await this.write([{ kind: "delete", key: http(token) }]);
      },
      putAlpn: async (domain, pair: KeyPair) => {
        await local.putAlpn(domain, pair);
        await this.write([{
          kind: "put",
          key: alpn(domain),
          value: JSON.stringify({ certificate: pair.cert, key: pair.key }),
        }]);
      },
      removeAlpn: async (domain) => {
        await local.removeAlpn(domain);
        await this.write([{ kind: "delete", key: alpn(domain) }]);
      },
    };
  }
}

/** Most keys re-sealed in one fenced transaction. */
export const RESEAL_BATCH = 64;

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
