/**
 * AES-256-GCM for private keys at rest in the KV store. The key is 32
 * random bytes, base64, from `[cluster] encryptionKey` or
 * `PORTICO_ENCRYPTION_KEY`. Each value carries a key id (first 8 hex chars
 * of SHA-256 of the key) so the right key is picked without trial
 * decryption, and a wrong key is reported as such, not as "corrupt data".
 *
 * Rotation: previous keys (`[cluster] previousEncryptionKeys` or
 * `PORTICO_PREVIOUS_ENCRYPTION_KEYS`) still open values sealed with them;
 * new values are always sealed with the current key, and the manager
 * re-seals old ones (see `KvAcmeStorage.reseal`). Errors name key ids,
 * never keys.
 *
 * @module
 */

import { PREVIOUS_ENCRYPTION_KEYS_ENV } from "../env.ts";


/** A sealed value: `v1:<keyId>:<iv b64>:<ciphertext b64>`. */
export type Sealed = string;

/** A key as configured: where it comes from (for errors) and its base64 text. */
export interface KeySource {
  where: string;
  base64Key: string;
}

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
function unb64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

async function importKey(source: KeySource): Promise<{ key: CryptoKey; keyId: string }> {
  const { where } = source;
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = unb64(source.base64Key.trim());
  } catch {
    throw new Error(
      `${where}: expected 32 random bytes in base64 (e.g. \`openssl rand -base64 32\`), found invalid base64`,
    );
  }
  if (raw.length !== 32) {
    throw new Error(
      `${where}: expected 32 random bytes in base64 (e.g. \`openssl rand -base64 32\`), found ${raw.length} bytes`,
    );
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  const keyId = [...digest.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  return { key, keyId };
}

/** The key id a sealed value names, or undefined when it is not a sealed value. */
export function sealedKeyId(sealed: string): string | undefined {
  const parts = sealed.split(":");
  return parts.length === 4 && parts[0] === "v1" ? parts[1] : undefined;
}

/** Seals with the current key; opens with the current key or any previous one. */
export class SecretBox {
  private constructor(
    private readonly key: CryptoKey,
    readonly keyId: string,
    private readonly previous: ReadonlyMap<string, CryptoKey>,
  ) {}

  /**
   * `where` names the config field or env var in errors. `previous` are
   * keys being rotated out: they only open.
   *
   * @example
   * ```ts
   * const box = await SecretBox.fromBase64("[cluster] encryptionKey", newKey, [
   *   { where: "[cluster] previousEncryptionKeys[0]", base64Key: oldKey },
   * ]);
   * ```
   */
  static async fromBase64(
    where: string,
    base64Key: string,
    previous: KeySource[] = [],
  ): Promise<SecretBox> {
    const current = await importKey({ where, base64Key });
    const old = new Map<string, CryptoKey>();
    for (const p of previous) {
      const { key, keyId } = await importKey(p);
      if (keyId !== current.keyId) old.set(keyId, key);
    }
    return new SecretBox(current.key, current.keyId, old);
  }

  /** Ids of the previous keys, for logs. */
  get previousKeyIds(): string[] {
    return [...this.previous.keys()];
  }

  /** True when `sealed` was sealed with the current key (nothing to re-seal). */
  isCurrent(sealed: Sealed): boolean {
    return sealedKeyId(sealed) === this.keyId;
  }

  async seal(plain: string): Promise<Sealed> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv },
        this.key,
        new TextEncoder().encode(plain),
      ),
    );
    return `v1:${this.keyId}:${b64(iv)}:${b64(data)}`;
  }

  /** Throws an Error naming `where` and key ids when the value is not ours, no configured key has its id, or the data is damaged. */
  async open(where: string, sealed: Sealed): Promise<string> {
    const parts = sealed.split(":");
    if (parts.length !== 4 || parts[0] !== "v1") {
      throw new Error(`${where}: not an encrypted value (expected v1:keyid:iv:data)`);
    }
    const id = parts[1];
    const key = id === this.keyId ? this.key : this.previous.get(id);
    if (!key) {
      const prev = this.previousKeyIds;
      throw new Error(
        `${where}: encrypted with key ${id}, but the configured encryption key is ${this.keyId}` +
          ` and no previous key has id ${id} (previous: ${
            prev.length ? prev.join(", ") : "none"
          });` +
          ` add the key with id ${id} to [cluster] previousEncryptionKeys or ${PREVIOUS_ENCRYPTION_KEYS_ENV}` +
          ` (see the README, "Rotating the encryption key")`,
      );
    }
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: unb64(parts[2]) },
        key,
        unb64(parts[3]),
      );
      return new TextDecoder().decode(plain);
    } catch {
      throw new Error(`${where}: decryption failed with key ${id} (data damaged)`);
    }
  }
}
