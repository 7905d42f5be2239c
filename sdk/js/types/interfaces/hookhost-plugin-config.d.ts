/** @module Interface hookhost:plugin/config@0.1.2 **/
/**
 * The value of `key`, or none when the manifest does not set it.
 */
export function get(key: string): string | undefined;
/**
 * Every key and value, sorted by key.
 */
export function getAll(): Array<[string, string]>;
