/**
 * Configuration: types, the schema language, static and dynamic validation,
 * and TOML loading. Everything another module needs is exported here.
 *
 * @example
 * ```ts
 * import { findStaticConfigFile, loadFileProviderConfig, loadStaticFile, validateStatic } from "./lib/config/mod.ts";
 *
 * const path = await findStaticConfigFile(Deno.args[0]);
 * const config = path ? await loadStaticFile(path) : validateStatic({}, "(defaults)");
 * const dynamic = config.providers.file ? await loadFileProviderConfig(config.providers.file) : undefined;
 * ```
 *
 * @module
 */

export type * from "./types.ts";
export { ConfigError, type ConfigIssue, formatIssue } from "./errors.ts";
export {
  bool,
  type CheckContext,
  type DecodeOptions,
  decodeOrThrow,
  type DecodeResult,
  decodeWithSchema,
  describeExpected,
  describeFound,
  duration,
  editDistance,
  enumOf,
  formatDuration,
  formatPath,
  int,
  IssueCollector,
  isTable,
  KV_DECODE_OPTIONS,
  list,
  num,
  obj,
  parseDuration,
  type PathSegment,
  record,
  type Schema,
  str,
  stringList,
  suggestKey,
  table,
  union,
} from "./schema.ts";
export {
  checkDomain,
  checkEndpoint,
  checkHttpUrl,
  checkIpOrCidr,
  checkName,
  checkReference,
  hostsOverlap,
  type ListenAddress,
  parseListenAddress,
} from "./values.ts";
export {
  INTERNAL_ENTRYPOINT,
  LETS_ENCRYPT_PRODUCTION,
  staticConfigSchema,
  validateStatic,
  type ValidateStaticOptions,
} from "./static.ts";
export {
  dynamicConfigSchema,
  emptyDynamicConfig,
  MIDDLEWARE_TYPES,
  validateDynamic,
} from "./dynamic.ts";
export {
  findStaticConfigFile,
  listTomlFiles,
  loadDynamicDirectory,
  loadDynamicFile,
  loadFileProviderConfig,
  loadStaticFile,
  mergeDynamicConfigs,
  parseToml,
  STATIC_FILE_NAMES,
} from "./load.ts";
