#!/usr/bin/env python3
"""The ASGI bridge's cost per request, in process: WSGI hello vs ASGI hello, same server code.

``.venv/bin/python loadtests/asgi_bridge.py [--requests 20000] [--runs 3]``

Each run is a fresh, gevent-patched interpreter. The real ``HTTPConnection`` serves requests
arriving over ``socketpair()``s (no TCP, no wrk): client greenlets write a request and read
the response, sequentially on one connection, then spread over 500 connections at once. The
WSGI and ASGI numbers share every cost (parser, connection, client) except the adapter, so
their difference is what the bridge adds. "wsgi-nohook" is WSGI without the running-loop
hook, to show that hook's own cost. "crossing" is the bare round trip an ASGI request pays
on top of its app (a greenlet hands a coroutine to the loop and is woken when it is done:
``run_in_loop(noop())``), with no HTTP at all. Reports the minimum over the runs of the
process's CPU time per request (µs; steadier than wall time on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("wsgi-nohook", "wsgi", "asgi", "crossing")


def _child(variant: str, requests: int, conns: int) -> dict[str, float]:
    from gevent import monkey

    monkey.patch_all()
    import socket
    import time

    import gevent

    from greenserve import config
    from greenserve.app.runtime import make_runtime
    from greenserve.connection import HTTPConnection
    from greenserve.streams import ConnectionInfo
    from greenserve.worker import WorkerState

    body = b"Hello, world!"

    def wsgi(environ: object, start_response: object) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [body]

    async def asgi(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    if variant == "crossing":
        return _crossing(requests, conns)
    cfg = config.from_mapping({"bind": "127.0.0.1:0", "asgi_lifespan": "off",
                               "worker_connections": conns + 10})
    state = WorkerState(cfg)
    runtime = make_runtime(asgi if variant == "asgi" else wsgi, state)
    if variant != "wsgi-nohook":
        runtime.startup(lambda: True, 1.0)
    info = ConnectionInfo(client=("127.0.0.1", 1), server=("127.0.0.1", 80))
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

    def client(sock: socket.socket, count: int) -> None:
        for _ in range(count):
            sock.sendall(request)
            data = b""
            while not data.endswith(body):
                data += sock.recv(65536)

    def measure(n_conns: int, per_conn: int) -> float:
        pairs = [socket.socketpair() for _ in range(n_conns)]
        servers = [gevent.spawn(HTTPConnection(s, info, state).serve, runtime.handler)
                   for s, _ in pairs]
        gevent.joinall([gevent.spawn(client, c, 50) for _, c in pairs])  # warm-up
        started = time.process_time()
        gevent.joinall([gevent.spawn(client, c, per_conn) for _, c in pairs])
        elapsed = time.process_time() - started
        for _, c in pairs:
            c.close()
        gevent.joinall(servers, timeout=5)
        return elapsed / (n_conns * per_conn) * 1e6

    return {"sequential": measure(1, requests),
            f"concurrent_{conns}": measure(conns, max(requests // conns, 20))}


def _crossing(requests: int, conns: int) -> dict[str, float]:
    import time

    import gevent

    from greenserve.asgi import bridge

    loop_bridge = bridge.LoopBridge()
    loop_bridge.start()

    async def noop() -> None:
        return None

    def client(count: int) -> None:
        for _ in range(count):
            bridge.run_in_loop(noop())

    def measure(n: int, per: int) -> float:
        gevent.joinall([gevent.spawn(client, 20) for _ in range(n)])
        started = time.process_time()
        gevent.joinall([gevent.spawn(client, per) for _ in range(n)])
        return (time.process_time() - started) / (n * per) * 1e6

    result = {"sequential": measure(1, requests),
              f"concurrent_{conns}": measure(conns, max(requests // conns, 20))}
    loop_bridge.stop(1.0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--conns", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=VARIANTS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.requests, args.conns)))
        return
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.runs):
        for variant in VARIANTS:  # interleaved, so background load hits each alike
            out = subprocess.run(
                [sys.executable, __file__, "--child", variant, "--requests",
                 str(args.requests), "--conns", str(args.conns)],
                capture_output=True, text=True, check=True, cwd=ROOT,
                env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
            result = json.loads(out.stdout.strip().splitlines()[-1])
            for key, value in result.items():
                cell = best.setdefault(variant, {})
                cell[key] = min(value, cell.get(key, value))
    keys = list(best["asgi"])
    print(f"{'µs per request':<14}" + "".join(f"{k:>18}" for k in keys))
    for variant in VARIANTS:
        print(f"{variant:<14}" + "".join(f"{best[variant][k]:>18.1f}" for k in keys))
    print(f"{'asgi - wsgi':<14}" + "".join(
        f"{best['asgi'][k] - best['wsgi'][k]:>18.1f}" for k in keys))


if __name__ == "__main__":
    main()
