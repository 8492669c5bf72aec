"""Building the PEP 3333 ``environ`` from a request head. Pure: no I/O."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from ..protocol.events import Request
from ..streams import ConnectionInfo

if TYPE_CHECKING:
    from ..worker import WorkerState


class HeaderRefused(ValueError):
    """A header name with ``_`` arrived while ``--header-map refuse`` is set."""


# Headers that already have a CGI name of their own.
_CGI_NAMES = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(path, query) of a request target, in origin or absolute form; the fragment is dropped."""
    if target[:1] == b"/" and b"#" not in target:  # the usual origin form
        path, _, query = target.partition(b"?")
        return path, query
    target = target.split(b"#", 1)[0]
    if not target.startswith(b"/"):
        scheme, sep, rest = target.partition(b"://")
        if sep:
            slash = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=-1)
            target = b"/" if slash < 0 else rest[slash:]
            if target.startswith(b"?"):
                target = b"/" + target
    path, _, query = target.partition(b"?")
    return path, query


def base_environ(state: WorkerState) -> dict[str, Any]:
    """The keys that are the same for every request of this worker."""
    cfg = state.cfg
    return {
        "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr,
        # Many requests run at once in this process (greenlets), so apps must be
        # concurrency-safe, exactly as under threads.
        "wsgi.multithread": True,
        "wsgi.multiprocess": cfg.workers > 1,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": state.server_header.decode("latin-1"),
        "SCRIPT_NAME": os.environ.get("SCRIPT_NAME", ""),
    }


def connection_environ(info: ConnectionInfo, state: WorkerState) -> dict[str, Any]:
    """The keys that are the same for every request of one connection.

    Built once per connection (the addresses, the scheme, whether the peer may set the
    secure-scheme headers); each request's environ starts as a copy of it.
    """
    environ = dict(state.base_environ)
    if info.client is not None:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = info.client[0], str(info.client[1])
    else:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = "", ""
    # Without a Host header (HTTP/1.0) the server's own address names it.
    if info.server is not None:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = info.server[0], str(info.server[1])
    else:
        environ["SERVER_NAME"] = "localhost"
        environ["SERVER_PORT"] = _DEFAULT_PORTS.get(info.scheme, "80")
    environ["wsgi.url_scheme"] = info.scheme
    environ[_TRUSTED] = state.forwarded_allow.allows(info)
    return environ


# A key of the connection template only: whether the peer may set the secure-scheme headers.
_TRUSTED = "greenserve.trusted_peer"
_DEFAULT_PORTS = {"https": "443", "http": "80"}


def build_environ(
    request: Request,
    info: ConnectionInfo,
    state: WorkerState,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The per-request environ (without ``wsgi.input``/``wsgi.file_wrapper``).

    ``base`` is the connection's :func:`connection_environ`, when the caller keeps it.
    """
    environ = (base if base is not None else connection_environ(info, state)).copy()
    trusted = environ.pop(_TRUSTED)
    target = request.target
    if target[:1] == b"/" and b"#" not in target:  # split_target's usual case, inline
        path, _, query = target.partition(b"?")
    else:
        path, query = split_target(target)
    full_path = path_info = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
    script_name: str = environ["SCRIPT_NAME"]
    if script_name and path_info.startswith(script_name):
        path_info = path_info[len(script_name) :]
    raw_uri = target.decode("latin-1")
    environ["REQUEST_METHOD"] = request.method.decode("ascii")
    environ["PATH_INFO"] = path_info
    environ["QUERY_STRING"] = query.decode("latin-1")
    environ["RAW_URI"] = raw_uri
    environ["REQUEST_URI"] = raw_uri
    environ["SERVER_PROTOCOL"] = _PROTOCOLS.get(request.http_version) or (
        "HTTP/" + request.http_version.decode("ascii"))
    forwarders = state.forwarder_headers if trusted else _NO_FORWARDERS
    if _add_headers(environ, request, state.cfg.header_map, forwarders):
        _forwarded_script_name(environ, full_path)
    if request.scheme is not None:  # a uwsgi front end's HTTPS
        environ["wsgi.url_scheme"] = request.scheme
    host = environ.get("HTTP_HOST")
    if host:
        _add_server(environ, host, request.scheme or info.scheme)
    if trusted:  # secure_scheme_headers (raises SchemeConflict)
        scheme = state.scheme_headers.from_environ(environ)
        if scheme is not None:
            environ["wsgi.url_scheme"] = scheme
    return environ


_PROTOCOLS = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0", b"2.0": "HTTP/2.0"}
#: environ key of each header name seen (None: dropped, a name with '_'), bounded in size
_KEYS: dict[bytes, str | None] = {}
_KEYS_SIZE = 1024


def _header_key(raw_name: bytes, header_map: str) -> str | None:
    """The environ key of a header name; None when the name is dropped."""
    key = _CGI_NAMES.get(raw_name.lower())
    if key is None:
        if b"_" in raw_name:
            if header_map == "refuse":
                raise HeaderRefused(raw_name.decode("latin-1"))
            if header_map != "dangerous":
                return None  # a name with '_' could spoof one with '-' (gunicorn's rule)
        key = "HTTP_" + raw_name.decode("latin-1").upper().replace("-", "_")
    return key


def _add_headers(environ: dict[str, Any], request: Request, header_map: str,
                 forwarders: frozenset[str]) -> bool:
    """Add the request's headers; True when a forwarder's SCRIPT_NAME header came."""
    keys = _KEYS
    script_name = False
    for raw_name, raw_value in request.headers:
        key = keys.get(raw_name, _UNKNOWN)
        if key is _UNKNOWN:
            if forwarders and b"_" in raw_name and _forwarded(raw_name, forwarders):
                # --forwarder-headers: a trusted front end may send these names with '_'
                key = "HTTP_" + raw_name.decode("latin-1").upper().replace("-", "_")
                script_name = script_name or key == "HTTP_SCRIPT_NAME"
            else:
                key = _header_key(raw_name, header_map)
                if b"_" not in raw_name and len(keys) < _KEYS_SIZE:
                    keys[raw_name] = key  # names with '_' depend on --header-map: not cached
        if key is None:
            continue
        value = raw_value.decode("latin-1")
        if key in environ and key.startswith("HTTP_"):
            sep = "; " if key == "HTTP_COOKIE" else ","
            environ[key] = environ[key] + sep + value
        else:
            environ[key] = value
    return script_name


_NO_FORWARDERS: frozenset[str] = frozenset()
_UNKNOWN = ""  # (not a key: every key starts with HTTP_ or CONTENT_)


class ScriptNameMismatch(ValueError):
    """A front end's SCRIPT_NAME header is not a prefix of the request path (gunicorn: 500)."""


def _forwarded(raw_name: bytes, forwarders: frozenset[str]) -> bool:
    return "*" in forwarders or raw_name.decode("latin-1").upper() in forwarders


def _forwarded_script_name(environ: dict[str, Any], full_path: str) -> None:
    """As gunicorn: a front end's ``SCRIPT_NAME`` header replaces the mount prefix, and the
    path must start with it."""
    script_name = environ["HTTP_SCRIPT_NAME"]
    if not full_path.startswith(script_name):
        raise ScriptNameMismatch(
            f"Request path {full_path!r} does not start with SCRIPT_NAME {script_name!r}")
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = full_path[len(script_name):]


def _add_server(environ: dict[str, Any], host: str, scheme: str) -> None:
    key = (host, scheme)
    server = _SERVERS.get(key)
    if server is None:
        name, sep, port = host.rpartition(":")
        if sep and port.isdigit() and not name.endswith(":"):
            server = name, port
        else:
            server = host, "443" if scheme == "https" else "80"
        if len(_SERVERS) >= _SERVERS_SIZE:
            _SERVERS.clear()
        _SERVERS[key] = server
    environ["SERVER_NAME"], environ["SERVER_PORT"] = server


#: (SERVER_NAME, SERVER_PORT) by (Host header, scheme): a site sees a handful of hosts;
#: bounded (starts over when full)
_SERVERS: dict[tuple[str, str], tuple[str, str]] = {}
_SERVERS_SIZE = 256

