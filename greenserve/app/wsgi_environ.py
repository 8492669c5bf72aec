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
_SECURE = {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(path, query) of a request target, in origin or absolute form; the fragment is dropped."""
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


def build_environ(
    request: Request, info: ConnectionInfo, state: WorkerState
) -> dict[str, Any]:
    """The per-request environ (without ``wsgi.input``/``wsgi.file_wrapper``)."""
    environ = dict(state.base_environ)
    path, query = split_target(request.target)
    path_info = unquote_to_bytes(path).decode("latin-1")
    script_name: str = environ["SCRIPT_NAME"]
    if script_name and path_info.startswith(script_name):
        path_info = path_info[len(script_name) :]
    raw_uri = request.target.decode("latin-1")
    environ.update(
        REQUEST_METHOD=request.method.decode("ascii"),
        PATH_INFO=path_info,
        QUERY_STRING=query.decode("latin-1"),
        RAW_URI=raw_uri,
        REQUEST_URI=raw_uri,
        SERVER_PROTOCOL="HTTP/" + request.http_version.decode("ascii"),
    )
    _add_headers(environ, request, state.cfg.header_map)
    _add_addresses(environ, info)
    if _trusted(info, state) and _is_secure(environ):
        environ["wsgi.url_scheme"] = "https"
    else:
        environ["wsgi.url_scheme"] = info.scheme
    return environ


def _add_headers(environ: dict[str, Any], request: Request, header_map: str) -> None:
    for raw_name, raw_value in request.headers:
        lname = raw_name.lower()
        value = raw_value.decode("latin-1")
        key = _CGI_NAMES.get(lname)
        if key is None:
            if b"_" in raw_name:
                if header_map == "refuse":
                    raise HeaderRefused(raw_name.decode("latin-1"))
                if header_map != "dangerous":
                    continue  # a name with '_' could spoof one with '-' (gunicorn's rule)
            key = "HTTP_" + raw_name.decode("latin-1").upper().replace("-", "_")
        if key in environ and key.startswith("HTTP_"):
            sep = "; " if key == "HTTP_COOKIE" else ","
            environ[key] = environ[key] + sep + value
        else:
            environ[key] = value


def _add_addresses(environ: dict[str, Any], info: ConnectionInfo) -> None:
    if info.client is not None:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = info.client[0], str(info.client[1])
    else:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = "", ""
    host = environ.get("HTTP_HOST")
    default_port = "443" if info.scheme == "https" else "80"
    if host:
        name, sep, port = host.rpartition(":")
        if sep and port.isdigit() and not name.endswith(":"):
            environ["SERVER_NAME"], environ["SERVER_PORT"] = name, port
        else:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = host, default_port
    elif info.server is not None:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = info.server[0], str(info.server[1])
    else:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", default_port


def _trusted(info: ConnectionInfo, state: WorkerState) -> bool:
    return state.forwarded_allow.allows(info)


def _is_secure(environ: dict[str, Any]) -> bool:
    for header, value in _SECURE.items():
        got = environ.get("HTTP_" + header.replace("-", "_"))
        if got is not None and got.lower() == value:
            return True
    return False
