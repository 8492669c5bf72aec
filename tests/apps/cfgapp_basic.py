"""A plain WSGI app plus the shapes app-loading tests need (factories, non-callables...)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"cfgapp_basic\n"]


def create_app(name: str = "default", debug: bool = False) -> Callable[..., Iterable[bytes]]:
    """A factory taking literal arguments; records them on the returned app."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{name} {debug}\n".encode()]

    app.created_with = (name, debug)  # type: ignore[attr-defined]
    return app


def broken_factory() -> None:
    raise RuntimeError("factory exploded")


def none_factory() -> None:
    return None


class _Holder:
    app = staticmethod(application)


holder = _Holder()
not_callable = 42
nothing = None
