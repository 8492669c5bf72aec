#!/usr/bin/env python3
"""Idle connections: worker RSS per idle keep-alive / WebSocket connection, one worker each.

``.venv/bin/python loadtests/idle_conns.py [--conns 10000] [--servers a,b] [--kinds http,ws]
[--deflate both]``. For each run, a server starts with one worker (``scale_apps.py``); after a
warm-up its worker's VmRSS is read, then ``--conns`` connections are opened from this
process and left idle (HTTP: one ``GET`` each, kept alive; WebSocket: the handshake and one
echoed message each), and VmRSS is read again after ``--settle`` seconds. While they are
open, fresh connections time a ``GET`` (and a WebSocket handshake + echo); at the end every
held connection is used once more to count those still alive. The server runs on CPU 0 and
the clients on CPU 1 (taskset / sched_setaffinity), clients from 127.0.0.2-9.

Every phase has a time limit, and every server is stopped when its run ends (also on
Ctrl-C). Results: a Markdown table on stdout, JSON in ``loadtests/results/idle_conns.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scale_common import (
    HERE,
    HTTPClient,
    Server,
    WSClient,
    abort_all,
    connect_http,
    connect_ws,
    interrupt_on_signals,
    loadavg,
    pin_self,
    raise_fd_limit,
    rss_bytes,
    running,
    supports_flag,
)

HTTP_SERVERS = ["greenserve-wsgi", "gunicorn-gevent"]
WS_SERVERS = ["greenserve-wsgi", "greenserve-asgi", "uvicorn-websockets", "uvicorn-wsproto",
              "gunicorn-asgi"]
SOURCES = [f"127.0.0.{n}" for n in range(2, 10)]
OPEN_CONCURRENCY = 100
FRESH = 20
DEFLATE_FLAG = "--ws-per-message-deflate"


@dataclass(frozen=True)
class Run:
    """One measurement: a server, a connection kind, and what the client offers."""

    server: str
    kind: str  # "http" or "ws"
    offer_deflate: bool = False
    extra: tuple[str, ...] = ()  # extra server arguments

    @property
    def label(self) -> str:
        offer = "" if self.kind == "http" else (" +deflate" if self.offer_deflate else "")
        extra = f" [{' '.join(self.extra)}]" if self.extra else ""
        return f"{self.server} {self.kind}{offer}{extra}"


@dataclass
class Result:
    """What one run measured (bytes, milliseconds, counts)."""

    label: str
    target: int
    opened: int = 0
    open_errors: list[str] = field(default_factory=list)
    negotiated: int = 0
    open_seconds: float = 0.0
    rss_before: int = 0
    rss_after: int = 0
    fresh_get_ms: list[float] = field(default_factory=list)
    fresh_ws_ms: list[float] = field(default_factory=list)
    alive: int = 0
    load_before: str = ""
    load_after: str = ""

    @property
    def per_conn(self) -> float:
        return (self.rss_after - self.rss_before) / self.opened if self.opened else 0.0


Client = HTTPClient | WSClient


async def _open_one(run: Run, port: int, index: int) -> Client:
    source = SOURCES[index % len(SOURCES)]
    if run.kind == "http":
        http = await connect_http(port, source)
        status = await asyncio.wait_for(http.get(), 10)
        if not status.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(status.decode("latin-1"))
        return http
    ws = await connect_ws(port, "/echo", run.offer_deflate, source)
    await asyncio.wait_for(ws.echo(), 10)
    return ws


async def _open_all(run: Run, port: int, count: int, limit: float,
                    result: Result) -> list[Client]:
    """Open ``count`` connections, ``OPEN_CONCURRENCY`` at a time, within ``limit`` s."""
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    clients: list[Client] = []

    async def one(index: int) -> None:
        async with gate:
            try:
                clients.append(await _open_one(run, port, index))
            except (TimeoutError, OSError) as exc:
                result.open_errors.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    tasks = [asyncio.ensure_future(one(i)) for i in range(count)]
    _done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        result.open_errors.append(f"{len(pending)} not opened within {limit:g} s")
    result.open_seconds = time.perf_counter() - started
    return clients


async def _timed(make: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await asyncio.wait_for(make(), 10)
    return (time.perf_counter() - started) * 1000


async def _fresh_get(port: int) -> None:
    client = await connect_http(port)
    try:
        await client.get()
    finally:
        abort_all([client])


async def _fresh_ws(port: int) -> None:
    client = await connect_ws(port, "/echo", False)
    try:
        await client.echo()
    finally:
        abort_all([client])


async def _fresh(port: int, kind: str, result: Result | None) -> None:
    """``FRESH`` new connections one after the other (timed when ``result`` is given)."""
    for _ in range(FRESH):
        get_ms = await _timed(lambda: _fresh_get(port))
        ws_ms = await _timed(lambda: _fresh_ws(port)) if kind == "ws" else None
        if result is not None:
            result.fresh_get_ms.append(get_ms)
            if ws_ms is not None:
                result.fresh_ws_ms.append(ws_ms)


async def _still_alive(clients: list[Client], limit: float) -> int:
    """Use every held connection once more; how many answered within ``limit`` s."""
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one(client: Client) -> bool:
        async with gate:
            try:
                if isinstance(client, HTTPClient):
                    await asyncio.wait_for(client.get(), 10)
                else:
                    await asyncio.wait_for(client.echo(), 10)
                return True
            except (TimeoutError, OSError):
                return False

    try:
        answers = await asyncio.wait_for(asyncio.gather(*(one(c) for c in clients)), limit)
    except TimeoutError:
        return -1
    return sum(answers)


async def measure(run: Run, server: Server, args: argparse.Namespace) -> Result:
    """Warm up, read RSS, open and hold the connections, read RSS, probe, release."""
    result = Result(run.label, args.conns)
    await _fresh(server.port, run.kind, None)  # warm-up: imports, first-request paths
    await asyncio.sleep(1)
    result.load_before = loadavg()
    result.rss_before = rss_bytes(server.worker_pid)
    clients = await _open_all(run, server.port, args.conns, args.open_limit, result)
    result.opened = len(clients)
    try:
        result.negotiated = sum(
            1 for c in clients if isinstance(c, WSClient) and c.upgraded.result())
        await asyncio.sleep(args.settle)
        result.rss_after = rss_bytes(server.worker_pid)
        result.load_after = loadavg()
        await _fresh(server.port, run.kind, result)
        result.alive = await _still_alive(clients, args.open_limit)
    finally:
        abort_all(clients)
    return result


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


def table(results: list[Result]) -> str:
    """The Markdown table of all runs."""
    rows = ["| run | open / target | deflate negotiated | worker RSS before → after (MB) "
            "| bytes per conn | alive after | fresh GET p50 / max ms "
            "| fresh WS p50 / max ms | load avg before / after |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(
            f"| {r.label} | {r.opened:,} / {r.target:,} | {r.negotiated:,} "
            f"| {r.rss_before / 2**20:.1f} → {r.rss_after / 2**20:.1f} "
            f"| {r.per_conn:,.0f} | {r.alive:,} | {_ms(r.fresh_get_ms)} "
            f"| {_ms(r.fresh_ws_ms)} | {r.load_before} / {r.load_after} |")
    return "\n".join(rows)


def plan(args: argparse.Namespace) -> list[Run]:
    """The runs asked for, in order: HTTP first, then WebSocket without and with deflate."""
    servers = args.servers.split(",") if args.servers else None
    kinds = args.kinds.split(",")
    offers = {"off": [False], "on": [True], "both": [False, True]}[args.deflate]
    runs: list[Run] = []
    if "http" in kinds:
        runs += [Run(s, "http") for s in HTTP_SERVERS if not servers or s in servers]
    if "ws" in kinds:
        for offer in offers:
            runs += [Run(s, "ws", offer) for s in WS_SERVERS if not servers or s in servers]
    refuse = (DEFLATE_FLAG, "false")
    if "ws" in kinds and True in offers and supports_flag("greenserve-wsgi", DEFLATE_FLAG):
        # The server setting that turns deflate off, with a client that offers it.
        runs += [Run(s, "ws", True, refuse) for s in WS_SERVERS[:2]
                 if not servers or s in servers]
    return runs


def _print_result(result: Result) -> None:
    errors = f", {len(result.open_errors)} open errors" if result.open_errors else ""
    if result.open_errors:
        errors += f" (first: {result.open_errors[0]})"
    print(f"  {result.opened:,} open in {result.open_seconds:.1f} s{errors}; RSS "
          f"{result.rss_before / 2**20:.1f} → {result.rss_after / 2**20:.1f} MB "
          f"({result.per_conn:,.0f} B/conn); alive {result.alive:,}; fresh GET "
          f"{_ms(result.fresh_get_ms)} ms; load {result.load_after}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=10000)
    parser.add_argument("--servers", default="", help="comma-separated; default: all")
    parser.add_argument("--kinds", default="http,ws")
    parser.add_argument("--deflate", choices=["off", "on", "both"], default="both",
                        help="WebSocket clients offer permessage-deflate: off, on or both")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--open-limit", type=float, default=180.0,
                        help="seconds allowed to open (and to re-check) the connections")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "idle_conns.json")
    args = parser.parse_args()
    interrupt_on_signals()
    limit = raise_fd_limit()
    if limit < args.conns + 200:  # the servers hold theirs in their own processes
        print(f"warning: fd limit {limit} is low for {args.conns} connections", file=sys.stderr)
    pinned = not args.no_pin and pin_self(1)
    results: list[Result] = []
    try:
        for run in plan(args):
            print(f"{run.label}: {args.conns:,} connections (load {loadavg()})", flush=True)
            log = HERE / "results" / f"idle-{run.server}.log"
            with running(run.server, list(run.extra), args.conns + 2000,
                         0 if pinned else None, log) as server:
                result = asyncio.run(measure(run, server, args))
            _print_result(result)
            results.append(result)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
    print(table(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    data: list[dict[str, Any]] = [{**asdict(r), "per_conn": r.per_conn} for r in results]
    args.output.write_text(json.dumps(data, indent=1))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
