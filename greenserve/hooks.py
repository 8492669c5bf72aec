"""What the request hooks receive, and how a worker calls them.

``pre_request(worker, req)`` and ``post_request(worker, req, environ, resp)`` get a
:class:`RequestInfo` and a :class:`ResponseInfo`: plain data with the attribute names of
gunicorn's ``Request`` and ``Response`` that hooks use (``req.method``, ``req.path``,
``req.headers``, ``resp.status``, ``resp.sent``...). Both are built from values the worker
already has (the parsed request head, the connection's addresses, the stream after the
response), so they need no socket.

Error handling, as gunicorn's workers do it (``gunicorn/workers/base_async.py``,
``sync.py``, ``gthread.py``):

- ``pre_request`` is called inside the request's error handling: an exception fails the
  request like an exception from the app (logged with its traceback, a 500, the app is not
  called). Do not wrap it in :func:`safe_call`.
- ``post_request`` is called after the response, in a ``finally``; an exception is logged
  (``Exception in post_request hook``, with the traceback) and changes nothing else. Call it
  through :func:`call_post_request` wrapped in :func:`safe_call`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from .config.hooks import PostRequestHook, is_default

if TYPE_CHECKING:
    from .config import Config
    from .protocol.events import Headers, Request
    from .streams import ConnectionInfo

__all__ = [
    "RequestInfo", "ResponseInfo", "call_post_request", "request_hooks_enabled", "safe_call",
]

# gunicorn's util.is_hoppish: headers its Response drops from resp.headers (it writes its own
# Connection/Transfer-Encoding), except that "Upgrade: websocket" is kept.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade",
})


class ErrorLog(Protocol):
    """What :func:`safe_call` needs of a log: ``logging.Logger`` fits."""

    def exception(self, msg: str, *args: object) -> None: ...


def safe_call(log: ErrorLog, name: str, hook: Callable[..., object], *args: object) -> object:
    """Call ``hook(*args)``; an exception is logged with its traceback and None returned.

    The log line is ``Exception in <name> hook``, gunicorn's wording for ``post_request``.
    Only ``Exception`` is caught, as in gunicorn: ``SystemExit``, ``KeyboardInterrupt`` and
    ``GreenletExit`` propagate.
    """
    try:
        return hook(*args)
    except Exception:
        log.exception("Exception in %s hook", name)
        return None


def call_post_request(
    hook: Callable[..., object], worker: Any, req: Any, environ: Any, resp: Any
) -> object:
    """Call a ``post_request`` hook with as many of its four arguments as it takes (2-4).

    ``hook`` is normally ``cfg.post_request``, a :class:`PostRequestHook` that knows its
    arity; a bare callable (a Config built without the converters) is measured here.
    """
    if not isinstance(hook, PostRequestHook):
        hook = PostRequestHook.wrap(hook)
    return hook(worker, req, environ, resp)


def request_hooks_enabled(cfg: Config) -> bool:
    """Whether ``pre_request`` or ``post_request`` is set, i.e. worth building objects for."""
    return not (is_default(cfg.pre_request) and is_default(cfg.post_request))


def _split_uri(uri: str) -> tuple[str, str, str]:
    # (path, query, fragment) as gunicorn's util.split_request_uri: a target starting with
    # "//" is a path, not a network location.
    try:
        parts = urlsplit("." + uri if uri.startswith("//") else uri)
    except ValueError:
        return uri, "", ""
    path = parts.path[1:] if uri.startswith("//") else parts.path
    return path, parts.query, parts.fragment


def _version(http_version: bytes) -> tuple[int, int]:
    major, _, minor = http_version.partition(b".")
    try:
        return int(major), int(minor or b"0")
    except ValueError:
        return (1, 1)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """A request as hooks see it: the attributes of gunicorn's ``http.message.Request``.

    ``uri`` is the request target as sent; ``path``, ``query`` and ``fragment`` are its
    parts, not percent-decoded. ``headers`` are ``(NAME, value)`` pairs of ``str`` with the
    name upper-cased, in the order received. ``remote_addr`` (and its gunicorn alias
    ``peer_addr``) is the peer's ``(host, port)``, or ``""`` on a unix socket.
    """

    method: str
    uri: str
    path: str
    query: str
    fragment: str
    version: tuple[int, int]
    headers: list[tuple[str, str]]
    scheme: str
    remote_addr: tuple[str, int] | str
    req_number: int = 1

    @property
    def peer_addr(self) -> tuple[str, int] | str:
        """gunicorn's other name for :attr:`remote_addr`."""
        return self.remote_addr

    @classmethod
    def from_request(
        cls, request: Request, info: ConnectionInfo, *, scheme: str | None = None,
        header_map: str = "drop", req_number: int = 1,
    ) -> RequestInfo:
        """Build from a parsed request head and its connection.

        ``scheme`` overrides ``info.scheme`` (pass ``environ["wsgi.url_scheme"]`` to reflect
        trusted ``X-Forwarded-Proto``, as gunicorn's ``req.scheme`` does). With ``header_map``
        ``"drop"`` (the setting's default), names containing ``_`` are left out, as gunicorn's
        parser leaves them out of ``req.headers``. ``req_number`` counts requests on the
        connection from 1.
        """
        uri = request.target.decode("latin-1")
        path, query, fragment = _split_uri(uri)
        drop = header_map == "drop"
        headers = [
            (name.decode("latin-1").upper(), value.decode("latin-1"))
            for name, value in request.headers
            if not (drop and b"_" in name)
        ]
        return cls(
            method=request.method.decode("latin-1"), uri=uri, path=path, query=query,
            fragment=fragment, version=_version(request.http_version), headers=headers,
            scheme=scheme or info.scheme,
            remote_addr=info.client if info.client is not None else "",
            req_number=req_number,
        )


class SentResponse(Protocol):
    """What :meth:`ResponseInfo.from_stream` reads: an ``InlineStream`` fits."""

    @property
    def status(self) -> int | None: ...
    @property
    def response_headers(self) -> Headers: ...
    @property
    def bytes_sent(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """A response as ``post_request`` sees it: the attributes of gunicorn's ``Response``.

    ``status`` is the status line's ``"200 OK"`` part (None if no response was started),
    ``status_code`` its number; ``headers`` are the app's ``(name, value)`` pairs as ``str``
    without hop-by-hop headers; ``sent`` is the number of body bytes sent;
    ``response_length`` the ``Content-Length`` value, or None when there was none.
    """

    status: str | None
    status_code: int | None
    headers: list[tuple[str, str]]
    sent: int
    response_length: int | None
    headers_sent: bool

    @classmethod
    def from_stream(cls, stream: SentResponse, reason: bytes | str | None = None) -> ResponseInfo:
        """Build from a stream once the response is over.

        ``reason`` is the phrase the app gave (the WSGI responder's ``reason``); without it
        the standard phrase for the code is used.
        """
        code = stream.status
        headers: list[tuple[str, str]] = []
        length: int | None = None
        for raw_name, raw_value in stream.response_headers:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1").strip(" \t")
            lname = name.lower()
            if lname == "content-length" and value.isdigit():
                length = int(value)
            if lname in _HOP_BY_HOP and not (lname == "upgrade" and value.lower() == "websocket"):
                continue
            headers.append((name, value))
        return cls(
            status=None if code is None else f"{code} {_phrase(code, reason)}".rstrip(),
            status_code=code, headers=headers, sent=stream.bytes_sent, response_length=length,
            headers_sent=code is not None,
        )


def _phrase(code: int, reason: bytes | str | None) -> str:
    if isinstance(reason, bytes):
        reason = reason.decode("latin-1")
    if reason:
        return reason
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""
