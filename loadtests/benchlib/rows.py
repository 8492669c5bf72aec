"""The rows of each table and the suites (tables) ``make bench`` runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench_app import EXPECTED_SIZES, HELLO


@dataclass(frozen=True)
class Row:
    """One row: a URL at a concurrency, with the app each interface serves it from."""

    key: str
    label: str
    path: str
    conns: int
    apps: dict[str, str]  # interface ("wsgi"/"asgi") -> module:attr
    size: int  # expected body size, checked before measuring
    requires: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per interface


@dataclass(frozen=True)
class Suite:
    """One table: its rows, its columns (server names) and the ratios it reports."""

    name: str
    title: str
    rows: list[Row]
    servers: list[str]
    ratios: list[tuple[str, str]]  # (numerator, denominator) server names, of req/s


_PLAIN = {"wsgi": "bench_app:app", "asgi": "asgi_bench_app:app"}
_FRAMEWORK = {"wsgi": "flask_bench_app:app", "asgi": "fastapi_bench_app:app"}
_FRAMEWORK_NEEDS: dict[str, tuple[str, ...]] = {"wsgi": ("flask",), "asgi": ("fastapi",)}

WSGI = Suite(
    "wsgi", "WSGI: greenserve and its peers (issue 7)",
    rows=[
        Row("10k-c64", "WSGI 10 KB hello, c64", "/10k", 64, _PLAIN, EXPECTED_SIZES["/10k"]),
        Row("sleep-c512", "WSGI 10 ms sleep, c512", "/sleep10ms", 512, _PLAIN,
            EXPECTED_SIZES["/sleep10ms"]),
        Row("flask-c64", "Flask hello, c64", "/hello", 64, _FRAMEWORK, len(HELLO),
            _FRAMEWORK_NEEDS),
    ],
    servers=["gunicorn", "pywsgi", "waitress", "uvicorn-httptools", "granian", "greenserve",
             "greenserve-compiled", "greenserve-h11"],
    ratios=[("greenserve", "gunicorn"), ("greenserve", "granian"),
            ("greenserve-compiled", "gunicorn"), ("greenserve-compiled", "granian"),
            ("greenserve-h11", "gunicorn"), ("greenserve-h11", "granian")],
)

ASGI = Suite(
    "asgi", "ASGI: greenserve's ASGI bridge and its peers (issue 5)",
    rows=[
        Row("asgi-hello-c64", "ASGI hello, c64", "/hello", 64, _PLAIN, len(HELLO)),
        Row("fastapi-c64", "FastAPI hello, c64", "/hello", 64, _FRAMEWORK, len(HELLO),
            _FRAMEWORK_NEEDS),
        Row("asgi-sleep-c512", "asyncio.sleep(0.01), c512", "/sleep10ms", 512, _PLAIN,
            EXPECTED_SIZES["/sleep10ms"]),
    ],
    servers=["greenserve-asgi", "uvicorn-h11", "uvicorn-httptools", "gunicorn-asgi"],
    ratios=[("greenserve-asgi", "uvicorn-h11"), ("greenserve-asgi", "uvicorn-httptools"),
            ("greenserve-asgi", "gunicorn-asgi")],
)

SUITES: dict[str, Suite] = {s.name: s for s in (WSGI, ASGI)}
