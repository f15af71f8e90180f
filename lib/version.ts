/**
 * The version this build reports (`portico version`, `/api/version`).
 *
 * @module
 */

export const VERSION = "0.1.0";
