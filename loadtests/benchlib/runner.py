"""Running a suite: per row, start its servers, then warm-up + measured wrk runs, rotated."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchlib.load import DISTURBED, Budget, CpuWatch
from benchlib.procs import free_port
from benchlib.rows import Row, Suite
from benchlib.servers import SERVERS, Server, version
from benchlib.wrk import parse_wrk, run_wrk

#: one cell: {"status": "measured", "runs": [...]} or {"status": "not installed (x)"} etc.
Cell = dict[str, Any]


@dataclass
class Settings:
    """How long and how often each cell runs, and what to leave out."""

    duration: int
    warmup: int
    repeats: int
    pick: str
    max_extra: float
    wrk_threads: int
    pin: bool
    only: set[str]  # server names and row keys to keep; empty: everything
    logs: Path


def selected(suite: Suite, only: set[str]) -> tuple[list[Row], list[str]]:
    """The suite's rows and servers that ``--only`` keeps (a filter of one kind keeps all
    of the other kind)."""
    rows = [r for r in suite.rows if r.key in only] or suite.rows
    servers = [s for s in suite.servers if s in only] or suite.servers
    return rows, servers


def run_suite(suite: Suite, wrk: str, opts: Settings, budget: Budget) -> dict[str, Any]:
    """Every selected cell of one table: {row key: {server name: cell}}."""
    rows, names = selected(suite, opts.only)
    results: dict[str, Any] = {}
    for number, row in enumerate(rows, 1):
        print(f"\n== {suite.name} row {number}/{len(rows)}: {row.label} ({row.path})",
              flush=True)
        cells: dict[str, Cell] = {}
        servers = start_row(row, names, opts, cells)
        try:
            measure_row(row, servers, wrk, opts, budget, cells)
        finally:
            for server in servers:
                server.stop()
        results[row.key] = cells
    return results


def start_row(row: Row, names: list[str], opts: Settings, cells: dict[str, Cell]) -> list[Server]:
    """Start (and check) every server of a row; one that cannot run gets a status cell."""
    servers = []
    for name in names:
        spec = SERVERS[name]
        needs = [*spec.requires, *row.requires.get(spec.interface, ())]
        missing = [d for d in needs if version(d) == "not installed"]
        if missing:
            cells[name] = {"status": f"not installed ({', '.join(missing)})"}
            print(f"{name}: not installed ({', '.join(missing)})")
            continue
        server = Server(spec, row.apps[spec.interface], opts.logs / f"{name}.log",
                        free_port(), opts.pin)
        try:
            server.start()
            server.check(row.path, row.size)
        except (RuntimeError, OSError) as exc:
            server.stop()
            cells[name] = {"status": "failed to start", "error": str(exc)[-2000:]}
            print(f"{name}: FAILED to start or check: {exc}")
            continue
        print(f"{name}: {' '.join(server.argv)}  (port {server.port})")
        cells[name] = {"status": "measured", "argv": server.argv, "runs": []}
        servers.append(server)
    return servers


def measure_row(row: Row, servers: list[Server], wrk: str, opts: Settings, budget: Budget,
                cells: dict[str, Cell]) -> None:
    """Every repeat of every server on this row; the order rotates between repeats so that
    slow drift and other load hit every server alike."""
    load = CpuWatch({s.proc.pid for s in servers if s.proc is not None})
    total, done = len(servers) * opts.repeats, 0
    step = max(1, len(servers) // max(opts.repeats, 1))
    for repeat in range(opts.repeats):
        shift = (repeat * step) % max(len(servers), 1)
        order = servers[shift:] + servers[:shift]
        for position, server in enumerate(order, 1):
            done += 1
            print(f"[{done}/{total}] {server.name:<18} c={row.conns:<3}", end=" ... ",
                  flush=True)
            record = run_cell(server, row, wrk, opts, load, budget)
            record |= {"repeat": repeat + 1, "position": position}
            cells[server.name]["runs"].append(record)


def run_cell(server: Server, row: Row, wrk: str, opts: Settings, load: CpuWatch,
             budget: Budget) -> dict[str, Any]:
    """Warm up, then measure one cell; re-run it once if other processes disturbed it."""
    attempts: list[dict[str, Any]] = []
    while True:
        budget.spend(load.wait_quiet(budget.left))
        attempts.append(measure_once(server, row, wrk, opts, load))
        run_time = opts.warmup + opts.duration
        if not attempts[-1]["disturbed"] or len(attempts) > 1 or budget.left < run_time:
            break
        print(f"{'':>28} re-run ...", end=" ", flush=True)
        budget.spend(run_time)
    kept = min(attempts, key=lambda r: r["other_cpu"])  # the least disturbed attempt
    return kept | {"attempts": len(attempts),
                   "other_cpu_attempts": [r["other_cpu"] for r in attempts]}


def measure_once(server: Server, row: Row, wrk: str, opts: Settings,
                 load: CpuWatch) -> dict[str, Any]:
    assert server.proc is not None
    url = server.url(row.path)
    if opts.warmup:
        run_wrk(wrk, url, row.conns, opts.warmup, opts.wrk_threads, opts.pin)
    load.start()
    out = run_wrk(wrk, url, row.conns, opts.duration, opts.wrk_threads, opts.pin)
    other, cpu = load.stop()
    result = parse_wrk(out)
    server_cpu = cpu.get(server.proc.pid, 0.0)
    cpu_us = server_cpu / max(result.requests, 1) * 1e6
    disturbed = other > DISTURBED
    print(f"{result.rps:7.0f} req/s  p99 {result.p99_ms:7.1f} ms  {cpu_us:4.0f} us CPU/req  "
          f"errors {result.errors}  other load {other:4.0%}"
          f"{'  DISTURBED' if disturbed else ''}", flush=True)
    return {**asdict(result), "errors": result.errors, "cpu_us_per_request": round(cpu_us, 1),
            "server_cpu_s": round(server_cpu, 2), "other_cpu": round(other, 3),
            "disturbed": disturbed, "wrk_output": out}
