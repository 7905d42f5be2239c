/** @module Interface hookhost:plugin/queue@0.1.2 **/
/**
 * Asks that, if this call returns `retry`, the next attempt be made
 * `delay-ms` milliseconds from now instead of after the host's random
 * backoff: what a downstream's own `Retry-After` said, say. The host caps
 * the delay at the manifest's `[retry] max` (default 10 min). It applies
 * only to this call, and only when it returns `retry` (an `ok` or a
 * `reject` ignores it); when called several times, the last call wins. In
 * sync mode the sender's 503 then carries `Retry-After` in whole seconds,
 * rounded up. Attempts still count against `[retry] max_attempts`.
 */
export function retryAfter(delayMs: bigint): void;
