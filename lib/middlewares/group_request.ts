/**
 * Registers one group of middlewares.
 *
 * @module
 */

export {};
