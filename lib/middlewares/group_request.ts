/**
 * The request/response shaping middlewares: path rewrites,
 * chain, headers, redirects, errors, buffering, compress and contentType.
 *
 * @module
 */

import { addPrefix } from "./add_prefix/mod.ts";
import { buffering } from "./buffering/mod.ts";
import { chain } from "./chain/mod.ts";
import { compress } from "./compress/mod.ts";
import { contentType } from "./content_type/mod.ts";
import { errors } from "./errors/mod.ts";
import { headers } from "./headers/mod.ts";
import { redirectRegex } from "./redirect_regex/mod.ts";
import { redirectScheme } from "./redirect_scheme/mod.ts";
import { passTLSClientCert } from "./pass_tls_client_cert/mod.ts";
import type { MiddlewareFactory } from "./types.ts";
import { replacePath } from "./replace_path/mod.ts";
import { replacePathRegex } from "./replace_path_regex/mod.ts";
import { stripPrefix } from "./strip_prefix/mod.ts";
import { stripPrefixRegex } from "./strip_prefix_regex/mod.ts";

export const REQUEST_MIDDLEWARES: Readonly<Record<string, MiddlewareFactory>> = {
  addPrefix,
  stripPrefix,
  stripPrefixRegex,
  replacePath,
  replacePathRegex,
  chain,
  headers,
  redirectScheme,
  redirectRegex,
  errors,
  buffering,
  compress,
  contentType,
  passTLSClientCert,
};
