"""{{name}}: a hookhost webhook handler plugin.

The host calls `handle` once per delivery, in a fresh instance. Return a
response (hookhost.json, .text, .ok, .empty, .status), or
`raise hookhost.retry("...")` (try again later) or
`raise hookhost.reject("...")` (never). hookhost.py beside this file has the
helpers: headers, JSON body, logging, the key-value store, config.
"""

import hookhost


class WitWorld(hookhost.Handler):
    def handle(self, delivery: hookhost.Delivery) -> hookhost.Response:
        # A body that is not JSON becomes a reject (422).
        body = hookhost.json_body(delivery) if delivery.body else {}
        name = body.get("name", "world") if isinstance(body, dict) else "world"
        hookhost.info(f"hello, {name} (delivery {delivery.id})")
        return hookhost.json({"plugin": "{{name}}", "hello": name, "delivery": delivery.id})
