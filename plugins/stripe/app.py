"""Stripe webhook handler, in Python (componentize-py).

The host has already checked `Stripe-Signature` (manifest: `scheme =
"stripe"`) before this code runs. Stripe delivers an event at least once, and
again when it does not see a 2xx in time, so each `payment_intent.succeeded`
is acted on once: the first delivery of an event id marks it in the plugin's
key-value store, later ones are answered as duplicates.
"""

import hookhost

# Event types this plugin knows. Anything else is rejected (422): the
# endpoint in Stripe's dashboard should not send it, and retrying will not
# make this plugin understand it.
HANDLED = {"payment_intent.succeeded", "payment_intent.payment_failed"}


class WitWorld(hookhost.Handler):
    def handle(self, delivery: hookhost.Delivery) -> hookhost.Response:
        event = hookhost.json_body(delivery)
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise hookhost.reject("not a Stripe event: no `id`")
        kind = event.get("type")
        if kind not in HANDLED:
            raise hookhost.reject(f"unsupported event type {kind!r}")
        intent = (event.get("data") or {}).get("object") or {}

        if kind == "payment_intent.payment_failed":
            reason = (intent.get("last_payment_error") or {}).get("message", "unknown")
            hookhost.warn(f"payment {intent.get('id')} failed: {reason}")
            return hookhost.json({"event": event["id"], "type": kind})

        # `increment` is atomic: of two concurrent deliveries of one event,
        # exactly one sees 1.
        seen = hookhost.kv.increment(f"event:{event['id']}")
        if seen > 1:
            hookhost.info(f"{event['id']} already handled ({seen} deliveries)")
            return hookhost.json({"event": event["id"], "duplicate": True})

        amount = intent.get("amount_received", intent.get("amount", 0))
        currency = intent.get("currency", "")
        total = hookhost.kv.increment(f"total:{currency}", int(amount))
        hookhost.info(f"payment {intent.get('id')}: {amount} {currency} (total {total})")
        return hookhost.json(
            {
                "event": event["id"],
                "payment_intent": intent.get("id"),
                "amount": amount,
                "currency": currency,
                "total": total,
            }
        )
