/** @module Interface hookhost:plugin/kv@0.1.2 **/
/**
 * The value of `key`, or none when it is not set.
 */
export function get(key: string): Uint8Array | undefined;
/**
 * Sets `key` to `value`, replacing any value it had.
 */
export function set(key: string, value: Uint8Array): void;
/**
 * Deletes `key`. Returns whether it was set.
 */
export { _delete as delete };
function _delete(key: string): boolean;
/**
 * Every key that starts with `prefix` (all keys for the empty prefix), in
 * byte order.
 */
export function listKeys(prefix: string): Array<string>;
/**
 * Adds `delta` to the decimal integer stored at `key` (a missing key
 * counts as 0), stores the sum as decimal text and returns it. Atomic:
 * concurrent deliveries never lose an increment.
 */
export function increment(key: string, delta: bigint): bigint;
/**
 * Why a key-value call failed.
 */
export type Error = ErrorInvalidKey | ErrorQuotaExceeded | ErrorNotANumber | ErrorStore;
/**
 * The key is empty, longer than the key size limit, or not valid.
 */
export interface ErrorInvalidKey {
  tag: 'invalid-key',
  val: string,
}
/**
 * The value is larger than the value size limit, or the write would
 * take the plugin's total (keys plus values) over its limit.
 */
export interface ErrorQuotaExceeded {
  tag: 'quota-exceeded',
  val: string,
}
/**
 * `increment` found a value that is not a decimal 64-bit integer, or
 * the sum overflowed.
 */
export interface ErrorNotANumber {
  tag: 'not-a-number',
  val: string,
}
/**
 * The host's store failed (disk full, I/O error): retrying the
 * delivery later may succeed.
 */
export interface ErrorStore {
  tag: 'store',
  val: string,
}
