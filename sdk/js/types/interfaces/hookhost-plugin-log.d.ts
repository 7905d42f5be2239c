/** @module Interface hookhost:plugin/log@0.1.2 **/
/**
 * Writes one line to the host's log at `level`.
 */
export function log(level: Level, message: string): void;
/**
 * Severity of a log line.
 * # Variants
 * 
 * ## `"trace"`
 * 
 * Very detailed tracing.
 * ## `"debug"`
 * 
 * Debugging detail.
 * ## `"info"`
 * 
 * Normal operation.
 * ## `"warn"`
 * 
 * Something unexpected that the plugin handled.
 * ## `"error"`
 * 
 * Something failed.
 */
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
