/**
 * Registers every middleware Portico implements. Imported once by the
 * program's entry point so the registry is complete before the first build.
 *
 * @module
 */

import "./group_request.ts";
import "./group_access.ts";
