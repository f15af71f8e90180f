/**
 * `tls` of a client Portico opens to a store or a collector (KV providers,
 * OTLP exporters): a CA to trust, an optional client certificate, and
 * insecureSkipVerify.
 *
 * @module
 */

import { bool, obj, type Schema, str } from "./schema.ts";

export const clientTlsSchema: Schema = obj({
  ca: str(),
  cert: str(),
  key: str(),
  insecureSkipVerify: bool({ default: false }),
}, {
  check: (tls, ctx) => {
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      ctx.report('expected both "cert" and "key" (a client certificate), or neither');
    }
  },
});
