"""Measure failed requests while greenserve's master rolls its workers (HUP) under load.

    python loadtests/restart_drops.py --requests 20000 --hups 5

Starts ``greenserve -w 2`` on 127.0.0.1 (port 0), runs client threads (half reuse one
keep-alive connection, half open a fresh connection per request), sends SIGHUP every
``--interval`` seconds, and stops after ``--requests`` requests or ``--limit`` seconds.
Prints the counts; exits non-zero when any request failed. Bounded in count and time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP = "restart_app:app"


class Counter:
    """Shared, locked tallies."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = 0
        self.failed: list[str] = []
        self.pids: set[bytes] = set()


def client(host: str, port: int, keep_alive: bool, counter: Counter,
           stop: threading.Event) -> None:
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            headers = {} if keep_alive else {"Connection": "close"}
            conn.request("GET", "/pid", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            good = resp.status == 200
            if not keep_alive or resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            good, body = False, repr(exc).encode()
            if conn is not None:
                conn.close()
            conn = None
        with counter.lock:
            if good:
                counter.ok += 1
                counter.pids.add(body)
            else:
                counter.failed.append(body.decode(errors="replace"))


def start_server(workers: int) -> tuple[subprocess.Popen[bytes], str, int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenserve", "-w", str(workers), "-b", "127.0.0.1:0", APP],
        stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    for raw in iter(proc.stderr.readline, b""):
        match = re.search(rb"Listening at: http://([\d.]+):(\d+)", raw)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
            return proc, match.group(1).decode(), int(match.group(2))
    raise RuntimeError("server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--hups", type=int, default=5)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=float, default=120.0)
    args = parser.parse_args()
    proc, host, port = start_server(args.workers)
    counter, stop = Counter(), threading.Event()
    threads = [threading.Thread(target=client, args=(host, port, i % 2 == 0, counter, stop),
                                daemon=True)
               for i in range(args.threads)]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        hups = 0
        # Run until both: every HUP was sent (and its roll had time to finish) and at least
        # --requests requests were made; bounded by --limit.
        while time.monotonic() - started < args.limit:
            time.sleep(args.interval)
            if hups < args.hups:
                proc.send_signal(signal.SIGHUP)
                hups += 1
            elif counter.ok + len(counter.failed) >= args.requests:
                break
        stop.set()
        for thread in threads:
            thread.join(15)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    elapsed = time.monotonic() - started
    total = counter.ok + len(counter.failed)
    print(f"requests: {total} in {elapsed:.1f} s ({total / elapsed:.0f}/s), HUPs sent: {hups}, "
          f"worker PIDs that answered: {len(counter.pids)}")
    print(f"failed: {len(counter.failed)} ({100 * len(counter.failed) / max(total, 1):.3f} %)")
    for failure in counter.failed[:10]:
        print("  ", failure)
    return 1 if counter.failed or hups < args.hups else 0


if __name__ == "__main__":
    sys.exit(main())
