/**
 * Where ACME state lives: the account and the certificates of each
 * resolver. Single node: Traefik's `acme.json` (see {@linkcode FileStorage});
 * cluster: one KV key per certificate (see lib/acme/kv_storage.ts).
 *
 * @module
 */

/** An ACME account. */
export interface AccountRecord {
  email?: string;
  /** PEM private key. */
  keyPem: string;
  /** Account URL at the CA, once registered. */
  url?: string;
}

/** One issued certificate. */
export interface CertificateRecord {
  main: string;
  sans: string[];
  /** PEM chain. */
  certPem: string;
  /** PEM private key. */
  keyPem: string;
}

/** Persistence of one or more resolvers' ACME state. */
export interface AcmeStorage {
  loadAccount(resolver: string): Promise<AccountRecord | undefined>;
  saveAccount(resolver: string, account: AccountRecord): Promise<void>;
  /** Every stored certificate of `resolver`; unreadable entries go to `errors` (the rest still load). */
  loadCertificates(
    resolver: string,
  ): Promise<{ certificates: CertificateRecord[]; errors: string[] }>;
  saveCertificate(resolver: string, certificate: CertificateRecord): Promise<void>;
  /**
   * Optional (KV storage): re-seals every private key found under a
   * previous encryption key with the current one. Entries no configured key
   * opens are left untouched and reported in `errors`.
   */
  reseal?(): Promise<ResealReport>;
}

/** What {@linkcode AcmeStorage.reseal} did. */
export interface ResealReport {
  /** Entries re-sealed with the current key. */
  resealed: number;
  /** Id of the current key. */
  keyId: string;
  /** One per entry left as it was, naming the key and the key id. */
  errors: string[];
}

/** Traefik's acme.json shape (v2/v3). Keys and certificates are base64 of their PEM. */
interface AcmeJson {
  [resolver: string]: {
    Account?: {
      Email?: string;
      Registration?: { uri?: string; body?: unknown };
      PrivateKey?: string;
      KeyType?: string;
    };
    Certificates?: {
      domain: { main: string; sans?: string[] };
      certificate: string;
      key: string;
      Store?: string;
    }[] | null;
  };
}

const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
const unb64 = (s: string) =>
  new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));

/**
 * The `storage` file of `[certificatesResolvers.NAME.acme]`, in Traefik's
 * acme.json format, so an existing acme.json keeps working. Every write
 * goes to a temporary file with mode 0600 that is then renamed over the
 * old one, so a crash never leaves a half-written file.
 *
 * Note: Traefik stores `Account.PrivateKey` as base64 DER; here it is base64
 * of the PEM, and both are read.
 */
export class FileStorage implements AcmeStorage {
  #queue: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  async #read(): Promise<AcmeJson> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return {};
      throw new Error(`acme storage "${this.path}": cannot read: ${(err as Error).message}`);
    }
    if (!text.trim()) return {};
    try {
      return JSON.parse(text) as AcmeJson;
    } catch (err) {
      throw new Error(
        `acme storage "${this.path}": not valid JSON (${(err as Error).message}); fix or remove it`,
      );
    }
  }

  /** Serialises read-modify-write cycles so concurrent saves do not lose each other's changes. */
  #update(fn: (data: AcmeJson) => void): Promise<void> {
    const next = this.#queue.then(async () => {
      const data = await this.#read();
      fn(data);
      const tmp = `${this.path}.${crypto.randomUUID()}.tmp`;
      await Deno.writeTextFile(tmp, JSON.stringify(data, null, 2), { mode: 0o600 });
      await Deno.chmod(tmp, 0o600);
      await Deno.rename(tmp, this.path);
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  async loadAccount(resolver: string): Promise<AccountRecord | undefined> {
    const a = (await this.#read())[resolver]?.Account;
    if (!a?.PrivateKey) return undefined;
    const decoded = unb64(a.PrivateKey);
    const keyPem = decoded.includes("-----BEGIN ")
      ? decoded
      : `-----BEGIN PRIVATE KEY-----\n${
        a.PrivateKey.replace(/.{1,64}/g, "$&\n")
      }-----END PRIVATE KEY-----\n`;
    return { email: a.Email, keyPem, url: a.Registration?.uri };
  }

  saveAccount(resolver: string, account: AccountRecord): Promise<void> {
    return this.#update((data) => {
      const r = (data[resolver] ??= {});
      r.Account = {
        Email: account.email ?? "",
        Registration: { uri: account.url, body: { status: "valid" } },
        PrivateKey: b64(account.keyPem),
        KeyType: "EC256",
      };
      r.Certificates ??= [];
    });
  }

  async loadCertificates(
    resolver: string,
  ): Promise<{ certificates: CertificateRecord[]; errors: string[] }> {
    const list = (await this.#read())[resolver]?.Certificates ?? [];
    const certificates: CertificateRecord[] = [];
    const errors: string[] = [];
    list.forEach((c, i) => {
      try {
        certificates.push({
          main: c.domain.main,
          sans: c.domain.sans ?? [],
          certPem: unb64(c.certificate),
          keyPem: unb64(c.key),
        });
      } catch (err) {
        errors.push(
          `acme storage "${this.path}": ${resolver}.Certificates[${i}]: ${(err as Error).message}`,
        );
      }
    });
    return { certificates, errors };
  }

  saveCertificate(resolver: string, certificate: CertificateRecord): Promise<void> {
    return this.#update((data) => {
      const r = (data[resolver] ??= {});
      const list = (r.Certificates ??= []).filter((c) => c.domain.main !== certificate.main);
      list.push({
        domain: { main: certificate.main, sans: certificate.sans },
        certificate: b64(certificate.certPem),
        key: b64(certificate.keyPem),
        Store: "default",
      });
      r.Certificates = list;
    });
  }
}
