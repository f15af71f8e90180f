/**
 * Cluster mode: Raft-style manager election over authenticated HTTP, fenced
 * in the KV store. Most modules need only {@linkcode ClusterNode} (role
 * events, status) and {@linkcode fencedWrite} (every manager-only write).
 *
 * @module
 */
export {
  type Effect,
  Election,
  type ElectionConfig,
  ElectionConfigError,
  type ElectionStatus,
  type HardState,
  MESSAGE_TYPES,
  type PeerMessage,
  type Role,
} from "./election.ts";
export { loadState, saveState, STATE_FILE, StateFileError } from "./persistence.ts";
export {
  AUTH_HEADERS,
  ClusterSecretError,
  constantTimeEqual,
  MessageAuth,
  type MessageAuthOptions,
  MIN_SECRET_BYTES,
  type RefusalReason,
  type SignedParts,
  type VerifyResult,
} from "./transport_auth.ts";
export {
  decodePeerMessage,
  MessageDecodeError,
  parsePeerMessage,
  REPLY_TYPES,
  REQUEST_PATHS,
  type RequestType,
  requestTypeForPath,
} from "./messages.ts";
export {
  claimLeadership,
  type ClaimResult,
  decodeLeaderRecord,
  encodeLeaderRecord,
  FencedOutError,
  fencedWrite,
  leaderKey,
  type LeaderRecord,
  readLeader,
  tryFencedWrite,
} from "./fencing.ts";
export {
  type ApiRole,
  ClusterConfigError,
  type ClusterCounters,
  type ClusterLogger,
  ClusterNode,
  type ClusterNodeOptions,
  type ClusterStatus,
  emptyClusterCounters,
} from "./node.ts";
