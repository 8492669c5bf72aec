"""Which HTTP/1 connection class serves a worker: gunicorn's ``--http-parser`` setting.

The implementations are registered as import strings, so a parser's dependency (httptools)
is imported only when that parser is selected.
"""

from __future__ import annotations

import importlib

from .h1_base import BaseH1Connection

#: ``--http-parser`` name -> "module:class" of the connection implementing it.
HTTP_PARSERS = {
    "python": "greenserve.protocol.h1:H11Connection",
    "fast": "greenserve.protocol.h1_fast:HttptoolsConnection",
}
# What a parser needs beyond greenserve's own dependencies, for the start-up error.
_NEEDS = {"fast": "httptools"}


def connection_class(http_parser: str, protocol: str = "http") -> type[BaseH1Connection]:
    """The class for ``http_parser``: ``python`` (h11), ``fast`` (httptools) or ``auto``.

    ``auto`` is ``fast`` when httptools can be imported and ``python`` otherwise; ``fast``
    without httptools raises ImportError (a start-up error, not a silent fallback).
    ``protocol`` ``uwsgi`` (gunicorn's ``--protocol``) reads uwsgi packets instead, with
    no HTTP parser.
    """
    if protocol == "uwsgi":
        return _load("greenserve.protocol.uwsgi:UwsgiConnection")
    if http_parser == "auto":
        try:
            return _load(HTTP_PARSERS["fast"])
        except ImportError:
            return _load(HTTP_PARSERS["python"])
    if http_parser not in HTTP_PARSERS:
        raise ValueError(f"unknown HTTP parser {http_parser!r} (auto, fast or python)")
    try:
        return _load(HTTP_PARSERS[http_parser])
    except ImportError as exc:
        needs = _NEEDS.get(http_parser, exc.name)
        raise ImportError(f"--http-parser {http_parser} needs {needs}: {exc}") from exc


def _load(path: str) -> type[BaseH1Connection]:
    module_name, _, class_name = path.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, BaseH1Connection)):
        raise TypeError(f"{path} is not an HTTP/1 connection class")
    return cls
