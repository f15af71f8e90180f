/**
 * What the server holds of each bound entrypoint port.
 *
 * @module
 */

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
