"""Write hookhost webhook handler plugins in Python.

A plugin is a WebAssembly component built with componentize-py against the
`handler` world in hookhost's `wit/`. The host verifies each webhook, then
calls your handler once per delivery, each time in a fresh instance (nothing
kept in memory survives to the next delivery, unless the plugin's manifest
opts into reuse with `[instance] max_deliveries`). This module gives Python
plugins what the Rust SDK (`hookhost-sdk`) gives Rust ones: header lookup,
the body as text or JSON, response builders, `retry`/`reject`, logging, the
plugin's key-value store and its config.

    import hookhost

    class WitWorld(hookhost.Handler):
        def handle(self, delivery):
            event = hookhost.json_body(delivery)      # bad JSON: reject (422)
            hookhost.info(f"event {event['id']}")
            return hookhost.json({"received": event["id"]})

Build (from the folder holding `app.py`, with this file on the path):

    componentize-py -d wit -w handler componentize -p . -p sdk/python app -o myhook.wasm

Errors: `raise hookhost.retry("...")` when trying the same delivery later may
succeed (answered 503 in sync mode, retried in queue mode;
`hookhost.retry_after("...", seconds)` says when), `raise
hookhost.reject("...")` when it never will (422, dead-lettered). Any other
exception is a bug: the host sees a trap and logs it.
"""

import json as _json
from typing import Any, Dict, Iterable, List, Optional, Union

import wit_world
from componentize_py_types import Err
from wit_world.imports import config as _config
from wit_world.imports import kv as _kv
from wit_world.imports import log as _log
from wit_world.imports import queue as _queue
from wit_world.imports.types import (
    Delivery,
    HandlerError_Reject,
    HandlerError_Retry,
    Header,
    Response,
)

__all__ = [
    "Handler", "Delivery", "Response", "Header",
    "header", "headers_all", "body_text", "json_body",
    "status", "ok", "empty", "text", "json", "with_header",
    "retry", "retry_after", "reject",
    "trace", "debug", "info", "warn", "error",
    "kv", "config",
]

#: The interface a plugin implements: define `class WitWorld(hookhost.Handler)`
#: with a `handle(self, delivery) -> Response` method in the app module.
Handler = wit_world.WitWorld

# --- reading a delivery ------------------------------------------------------


def header(delivery: Delivery, name: str) -> Optional[str]:
    """The first value of header `name` (case-insensitive), or None."""
    return next(iter(headers_all(delivery, name)), None)


def headers_all(delivery: Delivery, name: str) -> List[str]:
    """Every value of header `name` (case-insensitive), in the order received."""
    name = name.lower()
    return [h.value for h in delivery.headers if h.name.lower() == name]


def body_text(delivery: Delivery) -> str:
    """The body as UTF-8 text; a reject when it is not valid UTF-8."""
    try:
        return bytes(delivery.body).decode("utf-8")
    except UnicodeDecodeError as err:
        raise reject(f"request body is not valid UTF-8: {err}") from None


def json_body(delivery: Delivery) -> Any:
    """The body parsed as JSON; a reject saying what is wrong when it is not."""
    try:
        return _json.loads(bytes(delivery.body))
    except (ValueError, UnicodeDecodeError) as err:
        raise reject(f"request body is not the expected JSON: {err}") from None


# --- building a response -----------------------------------------------------

Body = Union[bytes, bytearray, str]


def _bytes(body: Body) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def status(code: int, body: Body = b"", headers: Iterable = ()) -> Response:
    """A response with this status, optional body (bytes or str) and headers
    (`(name, value)` pairs). The host answers 500 for a status outside 200-599."""
    return Response(
        status=code,
        headers=[Header(name=n.lower(), value=v) for n, v in headers],
        body=_bytes(body),
    )


def ok(body: Body = b"", headers: Iterable = ()) -> Response:
    """`200 OK`, empty unless given a body."""
    return status(200, body, headers)


def empty(code: int) -> Response:
    """A response without a body, e.g. `empty(204)`."""
    return status(code)


def text(body: str, code: int = 200) -> Response:
    """A `text/plain; charset=utf-8` response."""
    return status(code, body, [("content-type", "text/plain; charset=utf-8")])


def json(value: Any, code: int = 200) -> Response:
    """`value` serialised as an `application/json` response."""
    try:
        body = _json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise reject(f"cannot serialize the response as JSON: {err}") from None
    return status(code, body, [("content-type", "application/json")])


def with_header(response: Response, name: str, value: str) -> Response:
    """Adds a header (name lower-cased) to `response` and returns it."""
    response.headers.append(Header(name=name.lower(), value=value))
    return response


# --- failing -----------------------------------------------------------------


def retry(message: str) -> Err:
    """A transient failure, to `raise`: the host may deliver the same event
    again later (503 in sync mode; retried with backoff in queue mode)."""
    return Err(HandlerError_Retry(message))


def retry_after(message: str, seconds: float) -> Err:
    """A transient failure that knows when to try again, to `raise`: the host
    makes the next attempt `seconds` from now instead of after its own backoff
    (capped at the manifest's `[retry] max`; in sync mode the 503 carries
    `Retry-After`). The hint reaches the host when this is called."""
    millis = min(max(int(seconds * 1000), 0), 2**64 - 1)
    _queue.retry_after(millis)
    return Err(HandlerError_Retry(message))


def reject(message: str) -> Err:
    """A permanent failure, to `raise`: trying again will not help (422 in
    sync mode; dead-lettered in queue mode)."""
    return Err(HandlerError_Reject(message))


# --- logging -----------------------------------------------------------------


def trace(message: str) -> None:
    """Logs at trace level into the host's log (tagged with plugin and delivery)."""
    _log.log(_log.Level.TRACE, message)


def debug(message: str) -> None:
    """Logs at debug level."""
    _log.log(_log.Level.DEBUG, message)


def info(message: str) -> None:
    """Logs at info level."""
    _log.log(_log.Level.INFO, message)


def warn(message: str) -> None:
    """Logs at warn level."""
    _log.log(_log.Level.WARN, message)


def error(message: str) -> None:
    """Logs at error level."""
    _log.log(_log.Level.ERROR, message)


# --- the key-value store -----------------------------------------------------


def _kv_failure(err: Err) -> Err:
    # A store failure may pass (retry); a bad key, a quota or a non-number
    # will not get better by trying the same delivery again (reject).
    kind = type(err.value).__name__.removeprefix("Error_")
    message = f"kv {kind}: {err.value.value}"
    if isinstance(err.value, _kv.Error_Store):
        return retry(message)
    return reject(message)


class _Kv:
    """The plugin's own key-value store, kept by the host (durable, one
    namespace per plugin). A failed call raises `retry` (the store failed)
    or `reject` (bad key, quota, not a number), so a handler can let it
    propagate."""

    def get(self, key: str) -> Optional[bytes]:
        """The value of `key`, or None when it is not set."""
        try:
            value = _kv.get(key)
        except Err as err:
            raise _kv_failure(err) from None
        return None if value is None else bytes(value)

    def get_string(self, key: str) -> Optional[str]:
        """The value of `key` as UTF-8 text, or None; a reject when it is
        not UTF-8."""
        value = self.get(key)
        if value is None:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise reject(f"kv value of {key!r} is not UTF-8: {err}") from None

    def get_json(self, key: str) -> Any:
        """The value of `key` parsed as JSON, or None when it is not set."""
        value = self.get_string(key)
        if value is None:
            return None
        try:
            return _json.loads(value)
        except ValueError as err:
            raise reject(f"kv value of {key!r} is not JSON: {err}") from None

    def set_json(self, key: str, value: Any) -> None:
        """Sets `key` to `value` serialised as JSON."""
        self.set(key, _json.dumps(value, separators=(",", ":")))

    def set(self, key: str, value: Body) -> None:
        """Sets `key` to `value` (bytes, or str stored as UTF-8)."""
        try:
            _kv.set(key, _bytes(value))
        except Err as err:
            raise _kv_failure(err) from None

    def delete(self, key: str) -> bool:
        """Deletes `key`; whether it was set."""
        try:
            return _kv.delete(key)
        except Err as err:
            raise _kv_failure(err) from None

    def list_keys(self, prefix: str = "") -> List[str]:
        """Every key starting with `prefix`, in byte order."""
        try:
            return list(_kv.list_keys(prefix))
        except Err as err:
            raise _kv_failure(err) from None

    def increment(self, key: str, delta: int = 1) -> int:
        """Atomically adds `delta` to the integer at `key` (missing: 0) and
        returns the sum. `increment(key) == 1` is a race-free "first time"."""
        try:
            return _kv.increment(key, delta)
        except Err as err:
            raise _kv_failure(err) from None


class _Config:
    """The manifest's `[config]` table (references already resolved)."""

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value of `key`, or `default` when the manifest does not set it."""
        value = _config.get(key)
        return default if value is None else value

    def require(self, key: str) -> str:
        """The value of `key`; a reject naming the key when it is not set."""
        value = _config.get(key)
        if value is None:
            raise reject(f"the manifest's [config] does not set `{key}`")
        return value

    def get_all(self) -> Dict[str, str]:
        """Every key and value."""
        return dict(_config.get_all())


#: The plugin's key-value store: `hookhost.kv.get("k")`, `.get_string`,
#: `.get_json`, `.set`, `.set_json`, `.delete`, `.list_keys`, `.increment`.
kv = _Kv()

#: The plugin's config values: `hookhost.config.get("k")`, `.require("k")`,
#: `.get_all()`.
config = _Config()
