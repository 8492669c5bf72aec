"""Building ASGI scopes from a request head. Pure: no I/O, no asyncio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_to_bytes

from ..app.wsgi_environ import split_target
from ..protocol.events import Request
from ..streams import ConnectionInfo

if TYPE_CHECKING:
    from ..worker import WorkerState

#: The ASGI version and HTTP spec version greenserve implements. "2.3", not "2.4": with 2.4
#: Starlette's StreamingResponse stops listening for http.disconnect and relies on send()
#: raising instead, and an endless generator is then never cancelled (study, finding 7).
# (Final: constants in the compiled build, not module dict lookups per request)
ASGI_VERSION: Final = "3.0"
SPEC_VERSION: Final = "2.3"
LIFESPAN_SPEC_VERSION: Final = "2.0"

Scope = dict[str, Any]

_VERSIONS: Final = {b"1.1": "1.1", b"1.0": "1.0", b"2.0": "2"}
_METHODS: Final = {m.encode(): m
                   for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}


class ScopeBuilder:
    """What is the same for every HTTP scope of a worker, and :meth:`http` for one request."""

    def __init__(self, state: WorkerState, lifespan_state: dict[str, Any]) -> None:
        self.forwarded_allow = state.forwarded_allow
        self.scheme_headers = state.scheme_headers
        self.root_path: str = state.cfg.root_path
        self.root_raw = self.root_path.encode("utf-8")
        self.lifespan_state = lifespan_state

    def http(self, request: Request, info: ConnectionInfo) -> Scope:
        """The ``http`` scope of one request (``asgiref`` HTTP spec 2.3)."""
        target = request.target
        if target[:1] == b"/" and b"#" not in target:  # the usual origin form, inline
            raw_path, _, query = target.partition(b"?")
        else:
            raw_path, query = split_target(target)
        if b"%" in raw_path:
            path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
        else:
            path = raw_path.decode("utf-8", "replace")
        headers = []
        scheme_headers = self.scheme_headers.header_values
        said: list[tuple[bytes, bytes]] | None = None
        for name, value in request.headers:
            lname = name.lower()
            headers.append((lname, value))
            if lname in scheme_headers:
                said = [(lname, value)] if said is None else [*said, (lname, value)]
        scheme = request.scheme or info.scheme  # (a uwsgi front end's HTTPS)
        if said is not None and self._trusted(info):  # may raise SchemeConflict
            scheme = self.scheme_headers.from_headers(said) or scheme
        version = _VERSIONS.get(request.http_version) or request.http_version.decode("ascii")
        return {
            "type": "http",
            "asgi": {"version": ASGI_VERSION, "spec_version": SPEC_VERSION},
            "http_version": version,
            "method": _METHODS.get(request.method) or request.method.decode("ascii"),
            "scheme": scheme,
            "path": self.root_path + path,
            "raw_path": self.root_raw + raw_path,
            "query_string": query,
            "root_path": self.root_path,
            "headers": headers,
            "client": info.client,
            "server": info.server if info.server is not None else (
                (info.unix_path, None) if info.unix_path else None),
            "state": self.lifespan_state.copy(),
            # What http.py and h2cycle.py implement: HTTP/1 trailers need chunked framing,
            # and 1xx responses mean nothing to HTTP/1.0 clients.
            "extensions": {"http.response.pathsend": {}, "http.response.trailers": {},
                           "http.response.early_hint": {}} if version != "1.0"
            else {"http.response.pathsend": {}},
        }

    def websocket(self, request: Request, info: ConnectionInfo,
                  subprotocols: tuple[str, ...]) -> Scope:
        """The ``websocket`` scope of one handshake (``asgiref`` WebSocket spec 2.3)."""
        scope = self.http(request, info)
        del scope["method"]
        scope["type"] = "websocket"
        scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
        scope["subprotocols"] = list(subprotocols)
        scope["extensions"] = {"websocket.http.response": {}}
        return scope

    def _trusted(self, info: ConnectionInfo) -> bool:
        return self.forwarded_allow.allows(info)


def lifespan_scope(state: dict[str, Any]) -> Scope:
    """The ``lifespan`` scope; ``state`` is shared (shallow-copied) into every request."""
    return {
        "type": "lifespan",
        "asgi": {"version": ASGI_VERSION, "spec_version": LIFESPAN_SPEC_VERSION},
        "state": state,
    }
