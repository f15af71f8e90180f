/**
 * AES-256-GCM for private keys at rest in the KV store. The key is 32
 * random bytes, base64, from `[cluster] encryptionKey` or
 * `PORTICO_ENCRYPTION_KEY`. Each value carries a key id (first 8 hex chars
 * of SHA-256 of the key) so a wrong key is reported as such, not as
 * "corrupt data".
 *
 * @module
 */

/** Env var holding the key when `[cluster] encryptionKey` is not set. */
export const ENCRYPTION_KEY_ENV = "PORTICO_ENCRYPTION_KEY";

/** A sealed value: `v1:<keyId>:<iv b64>:<ciphertext b64>`. */
export type Sealed = string;

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
function unb64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Seals and opens strings with one AES-256-GCM key. */
export class SecretBox {
  private constructor(private readonly key: CryptoKey, readonly keyId: string) {}

  /** `where` names the config field or env var in errors. */
  static async fromBase64(where: string, base64Key: string): Promise<SecretBox> {
    let raw: Uint8Array<ArrayBuffer>;
    try {
      raw = unb64(base64Key.trim());
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
    return new SecretBox(key, keyId);
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

  /** Throws an Error naming `where` when the value is not ours, the key is wrong, or the data is damaged. */
  async open(where: string, sealed: Sealed): Promise<string> {
    const parts = sealed.split(":");
    if (parts.length !== 4 || parts[0] !== "v1") {
      throw new Error(`${where}: not an encrypted value (expected v1:keyid:iv:data)`);
    }
    if (parts[1] !== this.keyId) {
      throw new Error(
        `${where}: encrypted with key ${
          parts[1]
        }, but the configured encryption key is ${this.keyId} (wrong key, or rotate it as the README says)`,
      );
    }
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: unb64(parts[2]) },
        this.key,
        unb64(parts[3]),
      );
      return new TextDecoder().decode(plain);
    } catch {
      throw new Error(`${where}: decryption failed (data damaged)`);
    }
  }
}
