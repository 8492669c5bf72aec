#!/usr/bin/env python3
"""WebSocket broadcast: messages delivered per second to 1,000 clients of one worker.

``.venv/bin/python loadtests/ws_broadcast.py [--clients 1000] [--messages 100] [--size 64]
[--repeats 3] [--servers a,b] [--deflate]``. Each server (one worker, ``scale_apps.py``)
runs on CPU 0; this process holds ``--clients`` WebSocket clients in the room (``/room``) on
CPU 1. A ``GET /broadcast?n=N&size=S`` makes the app send N text messages of S bytes to
every member, one member after the other for each message (WSGI: gevent-websocket's
``ws.send``; ASGI: ``await send(...)``, the same raw ASGI app for greenserve, uvicorn and
``gunicorn -k asgi``). The clients count frames; the rate is the messages received by all
clients divided by the time from the request to the last message received. All servers run
at once (each with its clients joined); each round broadcasts on every server in turn, in an
order rotated between rounds, so load from elsewhere on the machine hits them alike.

A warm-up broadcast (N=5) first checks that every client is in the room. Each broadcast has
a time limit (``--limit``), and every server is stopped when its run ends (also on Ctrl-C).
Results: a Markdown table on stdout, JSON in ``loadtests/results/ws_broadcast.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import time
from contextlib import ExitStack
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
    running,
)

SERVERS = ["greenserve-wsgi", "greenserve-asgi", "uvicorn-websockets", "uvicorn-wsproto",
           "gunicorn-asgi"]
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Broadcast:
    """One measured broadcast."""

    delivered: int = 0
    expected: int = 0
    seconds: float = 0.0  # request sent → last message received by any client
    server_seconds: float = 0.0  # the app's own loop, from its JSON answer
    server_cpu: float = 0.0  # worker user+system CPU seconds during the broadcast
    client_cpu: float = 0.0  # this process's CPU seconds during the broadcast
    load: str = ""
    timed_out: bool = False

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


@dataclass
class Result:
    """All broadcasts of one server."""

    server: str
    clients: int
    negotiated: int = 0
    runs: list[Broadcast] = field(default_factory=list)
    error: str = ""

    def median(self, attribute: str) -> float:
        values = [float(getattr(run, attribute)) for run in self.runs]
        return statistics.median(values) if values else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


async def _join(port: int, count: int, offer_deflate: bool) -> list[WSClient]:
    """``count`` clients in the room, opened 100 at a time."""
    gate = asyncio.Semaphore(100)

    async def one() -> WSClient:
        async with gate:
            return await connect_ws(port, "/room", offer_deflate)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    clients = [r for r in results if isinstance(r, WSClient)]
    errors = [r for r in results if not isinstance(r, WSClient)]
    if errors:
        abort_all(clients)
        raise RuntimeError(f"{len(errors)} clients could not join: {errors[0]!r}")
    return clients


async def broadcast(server: Server, trigger: HTTPClient, clients: list[WSClient],
                    messages: int, size: int, limit: float) -> tuple[Broadcast, dict[str, Any]]:
    """Ask for one broadcast and wait (at most ``limit`` s) for every client to have it."""
    before = [c.received for c in clients]
    waits = [c.expect(c.received + messages) for c in clients]
    result = Broadcast(expected=messages * len(clients))
    cpu0, client0 = cpu_seconds(server.worker_pid), time.process_time()
    started = time.perf_counter()
    answer_task = asyncio.ensure_future(trigger.get(f"/broadcast?n={messages}&size={size}"))
    _done, pending = await asyncio.wait(waits, timeout=limit)
    result.timed_out = bool(pending)
    result.load = loadavg()
    for waiter in pending:
        waiter.cancel()
    await asyncio.gather(*waits, return_exceptions=True)  # retrieve exceptions of the closed
    result.client_cpu = time.process_time() - client0
    result.server_cpu = cpu_seconds(server.worker_pid) - cpu0
    result.delivered = sum(c.received - b for c, b in zip(clients, before, strict=True))
    last = max((c.last_at for c in clients), default=started)
    result.seconds = max(last - started, 0.0)
    try:
        await asyncio.wait_for(answer_task, 10 if pending else limit)
        summary: dict[str, Any] = json.loads(trigger.body)
    except (TimeoutError, OSError, ValueError) as exc:
        summary = {"error": repr(exc)}
    result.server_seconds = float(summary.get("seconds", 0.0))
    return result, summary


@dataclass
class Room:
    """One server with its clients joined and a keep-alive connection to trigger broadcasts."""

    server: Server
    clients: list[WSClient]
    trigger: HTTPClient
    result: Result


async def _prepare(server: Server, args: argparse.Namespace) -> Room | Result:
    """Join the clients and check the room with a warm-up broadcast (N=5)."""
    result = Result(server.name, args.clients)
    try:
        clients = await _join(server.port, args.clients, args.deflate)
    except RuntimeError as exc:
        result.error = str(exc)
        return result
    room = Room(server, clients, await connect_http(server.port), result)
    result.negotiated = sum(1 for c in clients if c.upgraded.result())
    await asyncio.sleep(0.5)  # let the last members' apps reach the room
    warm, summary = await broadcast(server, room.trigger, clients, 5, args.size, args.limit)
    if summary.get("members") != args.clients or warm.delivered != warm.expected:
        result.error = f"warm-up: {summary}, delivered {warm.delivered}/{warm.expected}"
        abort_all([*clients, room.trigger])
        return result
    return room


async def measure(servers: list[Server], args: argparse.Namespace) -> list[Result]:
    """Every server once per round, in an order rotated between rounds, so that load from
    elsewhere on the machine hits every server alike."""
    prepared = [await _prepare(server, args) for server in servers]
    rooms = [p for p in prepared if isinstance(p, Room)]
    try:
        for repeat in range(args.repeats):
            shift = repeat % len(rooms) if rooms else 0
            for room in rooms[shift:] + rooms[:shift]:
                if room.result.runs and room.result.runs[-1].timed_out:
                    continue
                run, _summary = await broadcast(room.server, room.trigger, room.clients,
                                                args.messages, args.size, args.limit)
                room.result.runs.append(run)
                print(f"  {room.server.name} #{repeat + 1}: {run.delivered:,}/{run.expected:,} "
                      f"in {run.seconds:.2f} s = {run.rate:,.0f} msg/s (app loop "
                      f"{run.server_seconds:.2f} s, worker CPU {run.server_cpu:.2f} s, client "
                      f"CPU {run.client_cpu:.2f} s, load {run.load})"
                      f"{' TIMED OUT' if run.timed_out else ''}", flush=True)
    finally:
        for room in rooms:
            abort_all([*room.clients, room.trigger])
    return [p if isinstance(p, Result) else p.result for p in prepared]


def table(results: list[Result], args: argparse.Namespace) -> str:
    """The Markdown table, medians over the repeats."""
    rows = [f"| server | clients | deflate negotiated | messages/s (median of {args.repeats}) "
            "| all runs msg/s | seconds per broadcast | worker CPU µs/msg "
            "| client CPU s | load avg (1/5/15) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if not r.runs:
            rows.append(f"| {r.server} | {r.clients:,} | {r.negotiated:,} | failed: {r.error} "
                        "| | | | | |")
            continue
        rates = ", ".join(f"{run.rate:,.0f}" for run in r.runs)
        cpu_us = statistics.median(run.server_cpu / run.delivered * 1e6 for run in r.runs
                                   if run.delivered)
        rows.append(f"| {r.server} | {r.clients:,} | {r.negotiated:,} "
                    f"| **{r.median('rate'):,.0f}** | {rates} | {r.median('seconds'):.2f} "
                    f"| {cpu_us:.1f} | {r.median('client_cpu'):.2f} | {r.runs[-1].load} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100, help="messages per broadcast")
    parser.add_argument("--size", type=int, default=64, help="bytes per message")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--deflate", action="store_true",
                        help="clients offer permessage-deflate")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per broadcast")
    parser.add_argument("--greenserve-args", default="",
                        help="extra arguments for the greenserve servers, e.g. "
                        "'--max-blocking-time 0'")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "ws_broadcast.json")
    args = parser.parse_args()
    interrupt_on_signals()
    raise_fd_limit()
    pinned = not args.no_pin and pin_self(1)
    results: list[Result] = []
    names = args.servers.split(",")

    def extra(name: str) -> list[str]:
        return shlex.split(args.greenserve_args) if name.startswith("greenserve") else []

    print(f"{', '.join(names)}: {args.clients:,} clients each x {args.messages} messages of "
          f"{args.size} B, {args.repeats} rounds (load {loadavg()})", flush=True)
    try:
        with ExitStack() as stack:
            servers = [stack.enter_context(running(
                name, extra(name), args.clients + 1000, 0 if pinned else None,
                HERE / "results" / f"broadcast-{name}.log")) for name in names]
            results = asyncio.run(measure(servers, args))
        for result in results:
            if result.error:
                print(f"  {result.server}: {result.error}", flush=True)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
    print(table(results, args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0 if results and all(r.runs for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
