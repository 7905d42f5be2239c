// {{name}}: a hookhost webhook handler plugin.
//
// The host calls `handle` once per delivery, in a fresh instance (it may be
// async, e.g. to `fetch`). Return a response (hookhost.json, .text, .ok,
// .empty, .status), or `throw hookhost.retry('...')` (try again later) or
// `throw hookhost.reject('...')` (never). hookhost.js beside this file has the
// helpers: headers, JSON body, logging, the key-value store, config.

import * as hookhost from './hookhost.js';

/** @param {import('./hookhost.js').Delivery} delivery */
export function handle(delivery) {
  // A body that is not JSON becomes a reject (422).
  const body = delivery.body.length > 0 ? hookhost.bodyJson(delivery) : {};
  const name = (body && typeof body.name === 'string') ? body.name : 'world';
  hookhost.info(`hello, ${name} (delivery ${delivery.id})`);
  return hookhost.json({ plugin: '{{name}}', hello: name, delivery: delivery.id });
}
