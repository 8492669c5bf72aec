"""Reducing repeats to one number per cell, the Markdown tables, and the environment."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib.rows import Suite
from benchlib.runner import selected
from benchlib.servers import SERVERS, version
from benchlib.wrk import SOCKET_ERRORS, wrk_version

METRICS = ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")
VERSIONS = ("greenserve", "gunicorn", "gevent", "greenlet", "h11", "httptools", "waitress",
            "granian", "uvicorn", "flask", "fastapi", "starlette")


def pick(records: list[dict[str, Any]], how: str) -> dict[str, Any]:
    """The cell's reported numbers: the median of each metric, or the best run by req/s.

    Runs that other processes disturbed are left out when at least one run was not. Errors
    are summed over every measured run, whichever is picked.
    """
    errors = {k: sum(r["socket_errors"].get(k, 0) for r in records) for k in SOCKET_ERRORS}
    errors["non2xx"] = sum(r["non2xx"] for r in records)
    kept = [r for r in records if not r["disturbed"]] or records
    if how == "best":
        best = max(kept, key=lambda r: r["rps"])
        numbers = {m: best[m] for m in METRICS}
    else:
        numbers = {m: statistics.median(r[m] for r in kept) for m in METRICS}
    return numbers | {"errors": errors, "runs": len(records), "kept": len(kept),
                      "disturbed": all(r["disturbed"] for r in kept)}


def summarise(suite: Suite, results: dict[str, Any], how: str) -> list[dict[str, Any]]:
    """One entry per measured row: each server's picked numbers (or status) and the ratios."""
    rows = []
    for row in suite.rows:
        if row.key not in results:
            continue
        cells: dict[str, Any] = {}
        for name, cell in results[row.key].items():
            measured = cell["status"] == "measured" and cell["runs"]
            cells[name] = pick(cell["runs"], how) if measured else {"status": cell["status"]}
        rows.append({"key": row.key, "label": row.label, "path": row.path,
                     "connections": row.conns, "servers": cells,
                     "ratios": _ratios(suite, cells, "rps"),
                     "cpu_ratios": _ratios(suite, cells, "cpu_us_per_request"),
                     "paired": _paired(suite, results[row.key])})
    return rows


def _paired(suite: Suite, row_cells: dict[str, Any]) -> dict[str, list[float] | None]:
    """Each ratio of req/s repeat by repeat (the two servers measured seconds apart), so a
    host whose speed drifts over the run moves both sides of each ratio alike."""
    paired: dict[str, list[float] | None] = {}
    for num, den in suite.ratios:
        by_repeat = [{r["repeat"]: r["rps"] for r in row_cells.get(name, {}).get("runs", [])
                      if not r.get("disturbed")} for name in (num, den)]
        ratios = [round(by_repeat[0][k] / by_repeat[1][k], 2)
                  for k in sorted(by_repeat[0]) if by_repeat[1].get(k)]
        paired[f"{num}/{den}"] = ratios or None
    return paired


def _ratios(suite: Suite, cells: dict[str, Any], metric: str) -> dict[str, float | None]:
    """The suite's ratios of one metric; None where a server has no number."""
    ratios: dict[str, float | None] = {}
    for num, den in suite.ratios:
        a, b = cells.get(num, {}).get(metric), cells.get(den, {}).get(metric)
        ratios[f"{num}/{den}"] = round(a / b, 2) if a and b else None
    return ratios


def _errors(cell: dict[str, Any]) -> str:
    parts = [f"{k} {v}" for k, v in cell["errors"].items() if v]
    return ", ".join(parts) or "0"


def _cell(cell: dict[str, Any], metric: str) -> str:
    if "status" in cell:
        return str(cell["status"])
    mark = " †" if cell["disturbed"] else ""
    if metric == "rps":
        return f"{cell['rps']:,.0f}{mark}"
    if metric == "latency":
        return f"{cell['p50_ms']:.1f} / {cell['p99_ms']:.1f}"
    if metric == "cpu":
        return f"{cell['cpu_us_per_request']:.0f}"
    return _errors(cell)


def render(suite: Suite, rows: list[dict[str, Any]], names: list[str]) -> str:
    """Four Markdown tables: req/s with the ratios, p50 / p99, CPU per request with the
    same ratios (below 1: the first server needs less CPU per request), errors."""
    labels = [SERVERS[n].label for n in names]
    ratios = list(rows[0]["ratios"]) if rows else []
    parts = []
    for metric, title in (("rps", "requests/s"), ("latency", "latency p50 / p99, ms"),
                          ("cpu", "server CPU µs per request"),
                          ("errors", "wrk socket errors and non-2xx, summed over the runs")):
        key = {"rps": "ratios", "cpu": "cpu_ratios"}.get(metric)
        head = [title, *labels] + (ratios if key else [])
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            out = [row["label"], *(_cell(row["servers"].get(n, {"status": "-"}), metric)
                                   for n in names)]
            if key:
                out += ["**%.2f**" % v if v is not None else "-" for v in row[key].values()]
            lines.append("| " + " | ".join(out) + " |")
        parts.append("\n".join(lines))
    parts.append(_render_paired(rows, ratios))
    return "\n\n".join(parts)


def _render_paired(rows: list[dict[str, Any]], ratios: list[str]) -> str:
    """The req/s ratios repeat by repeat: their median, and each one in run order."""
    head = ["requests/s ratios paired by repeat: median (each repeat)", *ratios]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        out = [row["label"]]
        for values in row.get("paired", {}).values():
            out.append(f"**{statistics.median(values):.2f}** ({', '.join(map(str, values))})"
                       if values else "-")
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def suite_report(suite: Suite, results: dict[str, Any], how: str,
                 only: set[str]) -> dict[str, Any]:
    names = selected(suite, only)[1]
    rows = summarise(suite, results, how)
    return {"title": suite.title, "rows": rows, "markdown": render(suite, rows, names),
            "runs": results}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision(root: Path) -> str:
    """The checkout's commit, with ``+dirty`` when the work tree has uncommitted changes."""
    try:
        argv = ["git", "-C", str(root), "describe", "--always", "--dirty=+dirty"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def environment(wrk: str, pin_note: str, root: Path) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {d: version(d) for d in VERSIONS},
        "greenserve_revision": git_revision(root),
        "wrk": wrk_version(wrk),
        "pinning": pin_note,
        "load_average_before": load_average(),
    }
