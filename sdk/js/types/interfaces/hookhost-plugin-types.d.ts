/** @module Interface hookhost:plugin/types@0.1.2 **/
/**
 * One HTTP header. Names are lower-case. A header sent several times
 * appears once per value, in the order received. Values that are not valid
 * UTF-8 reach the plugin with invalid bytes replaced by U+FFFD.
 */
export interface Header {
  /**
   * Lower-case header name, e.g. `x-github-event`.
   */
  name: string,
  /**
   * The header's value.
   */
  value: string,
}
/**
 * One webhook, as received and verified by the host.
 */
export interface Delivery {
  /**
   * Unique id of this delivery: the sender's own delivery id when it sends
   * one (e.g. `X-GitHub-Delivery`, `webhook-id`), otherwise made by the
   * host. Stable across retries of the same event.
   */
  id: string,
  /**
   * The route that matched, e.g. `/hooks/github`.
   */
  route: string,
  /**
   * The HTTP method, upper-case (`POST`).
   */
  method: string,
  /**
   * The request path, e.g. `/hooks/github`.
   */
  path: string,
  /**
   * The raw query string without the leading `?`; empty when there is none.
   */
  query: string,
  /**
   * Every request header, names lower-case.
   */
  headers: Array<Header>,
  /**
   * The request body, byte for byte as sent (signatures cover these bytes).
   */
  body: Uint8Array,
  /**
   * When the host received the request, in milliseconds since the Unix epoch.
   */
  receivedAt: bigint,
  /**
   * 1 for the first attempt; higher when the host retries this delivery.
   */
  attempt: number,
  /**
   * The verification scheme that accepted the request (e.g. `github`), or
   * none when the route is unverified.
   */
  verifiedBy?: string,
}
/**
 * What the plugin answers. In sync mode it goes back to the sender.
 */
export interface Response {
  /**
   * HTTP status code, 100 to 599.
   */
  status: number,
  /**
   * Response headers. Hop-by-hop headers (connection, transfer-encoding,
   * content-length) are set by the host and ignored here.
   */
  headers: Array<Header>,
  /**
   * Response body bytes.
   */
  body: Uint8Array,
}
/**
 * Why a plugin could not handle a delivery.
 */
export type HandlerError = HandlerErrorRetry | HandlerErrorReject;
/**
 * A transient failure (a downstream is down, a lock is held): trying the
 * same delivery again later may succeed. Answered 503 in sync mode. When
 * to try again is the host's backoff, unless the plugin called
 * `queue.retry-after` during this call.
 */
export interface HandlerErrorRetry {
  tag: 'retry',
  val: string,
}
/**
 * A permanent failure (malformed payload, unsupported event): trying
 * again will not help. Answered 422 in sync mode.
 */
export interface HandlerErrorReject {
  tag: 'reject',
  val: string,
}
