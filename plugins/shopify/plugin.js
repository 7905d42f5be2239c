// Shopify order webhook handler, in JavaScript (componentize-js).
//
// The host has already checked `X-Shopify-Hmac-Sha256` (manifest: `scheme =
// "shopify"`) before this code runs. For `orders/create` and `orders/paid` it
// answers with a summary of the order and counts orders in the plugin's
// key-value store; when the manifest's `[config]` sets `forward_url` (and
// `[allow] http` lets the plugin reach that host) it also POSTs the summary
// there with `fetch`, and asks for a retry when that fails.

import * as hookhost from '../../sdk/js/hookhost.js';

const HANDLED = new Set(['orders/create', 'orders/paid']);

export async function handle(delivery) {
  const topic = hookhost.header(delivery, 'x-shopify-topic');
  if (topic === undefined) {
    throw hookhost.reject('missing X-Shopify-Topic header');
  }
  if (!HANDLED.has(topic)) {
    // Not for us: acknowledge, so Shopify does not retry it.
    return hookhost.empty(204);
  }
  const order = hookhost.bodyJson(delivery);
  if (typeof order !== 'object' || order === null || order.id === undefined) {
    throw hookhost.reject('not a Shopify order: no `id`');
  }
  const items = (order.line_items ?? []).reduce((n, item) => n + (item.quantity ?? 1), 0);
  const summary = {
    topic,
    order: order.name ?? String(order.id),
    total: order.total_price ?? '0.00',
    currency: order.currency ?? '',
    items,
    shop: hookhost.header(delivery, 'x-shopify-shop-domain') ?? null,
  };
  summary.orders_seen = hookhost.kv.increment(`orders:${topic}`);
  hookhost.info(`${topic} ${summary.order}: ${summary.total} ${summary.currency}, ${items} items`);

  const forwardUrl = hookhost.config.get('forward_url');
  if (forwardUrl !== undefined) {
    let answer;
    try {
      answer = await fetch(forwardUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(summary),
      });
    } catch (err) {
      throw hookhost.retry(`forwarding to ${forwardUrl} failed: ${err.message ?? err}`);
    }
    if (!answer.ok) {
      throw hookhost.retry(`forwarding to ${forwardUrl} answered ${answer.status}`);
    }
    summary.forwarded = answer.status;
  }
  return hookhost.json(summary);
}
