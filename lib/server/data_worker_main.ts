/**
 * The module a data-plane Worker runs when Portico is not bundled.
 *
 * @module
 */

import { runDataWorker } from "./data_worker.ts";

runDataWorker();
