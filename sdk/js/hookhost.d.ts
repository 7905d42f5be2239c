// Types for hookhost.js. The WIT types (Delivery, Response, Header, the
// kv error variants) are generated from wit/ by `jco types` into ./types
// (`make js-types` regenerates them).

import type { Delivery, Response } from './types/interfaces/hookhost-plugin-types.js';
export type { Delivery, Response, Header, HandlerError } from './types/interfaces/hookhost-plugin-types.js';

/** Bytes or text; text is sent as UTF-8. */
export type Body = string | Uint8Array | ArrayBuffer;
/** Response headers: an object, or `[name, value]` pairs (repeatable names). */
export type Headers = Record<string, string> | Array<[string, string]>;

/** An error to `throw` from `handle`: its `payload` is the WIT `handler-error`. */
export interface HandlerFailure extends Error {
  payload: { tag: 'retry' | 'reject'; val: string };
}

/** What a plugin module exports (async is allowed: the host waits for it). */
export type Handle = (delivery: Delivery) => Response | Promise<Response>;

/** The first value of header `name` (case-insensitive), or `undefined`. */
export function header(delivery: Delivery, name: string): string | undefined;
/** Every value of header `name` (case-insensitive), in the order received. */
export function headersAll(delivery: Delivery, name: string): string[];
/** The body as UTF-8 text; throws a reject when it is not valid UTF-8. */
export function bodyText(delivery: Delivery): string;
/** The body parsed as JSON; throws a reject when it is not JSON. */
export function bodyJson<T = unknown>(delivery: Delivery): T;

/** A response with this status, optional body and headers. */
export function status(code: number, body?: Body, headers?: Headers): Response;
/** `200 OK`, empty unless given a body. */
export function ok(body?: Body, headers?: Headers): Response;
/** A response without a body, e.g. `empty(204)`. */
export function empty(code: number): Response;
/** A `text/plain; charset=utf-8` response. */
export function text(body: string, code?: number): Response;
/** `value` as an `application/json` response. */
export function json(value: unknown, code?: number): Response;
/** Adds a header (name lower-cased) to `response` and returns it. */
export function withHeader(response: Response, name: string, value: string): Response;

/** A transient failure, to `throw` (503 in sync mode; retried in queue mode). */
export function retry(message: string): HandlerFailure;
/** A transient failure with a hint: the next attempt `delayMs` from now (capped at `[retry] max`). */
export function retryAfter(message: string, delayMs: number): HandlerFailure;
/** A permanent failure, to `throw` (422 in sync mode; dead-lettered). */
export function reject(message: string): HandlerFailure;

/** Log into the host's log, tagged with the plugin and the delivery id. */
export function trace(message: unknown): void;
export function debug(message: unknown): void;
export function info(message: unknown): void;
export function warn(message: unknown): void;
export function error(message: unknown): void;

/** The plugin's own key-value store; failures throw `retry` or `reject`. */
export const kv: {
  get(key: string): Uint8Array | undefined;
  getString(key: string): string | undefined;
  getJson<T = unknown>(key: string): T | undefined;
  setJson(key: string, value: unknown): void;
  set(key: string, value: Body): void;
  delete(key: string): boolean;
  listKeys(prefix?: string): string[];
  increment(key: string, delta?: number): number;
};

/** The manifest's `[config]` table. */
export const config: {
  get(key: string): string | undefined;
  get(key: string, fallback: string): string;
  require(key: string): string;
  getAll(): Record<string, string>;
};
