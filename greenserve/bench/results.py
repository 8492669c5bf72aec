"""Locust's CSV files, read into typed rows.

The totals and failures come from ``PREFIX_final.json``, Locust's statistics at the end of
the run as :mod:`greenserve.bench.collector` wrote them, with Locust's rounded
response-time buckets. The time series comes from
``PREFIX_stats_history.csv`` (with ``--csv-full-history``): one ``Aggregated`` row per
second with the running request count and response-time percentiles over Locust's recent
window (the last 10 s). Times are milliseconds, as Locust writes them.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AGGREGATED = "Aggregated"
_CATCH = re.compile(r"^CatchResponseError\((['\"])(.*)\1\)$")


@dataclass(frozen=True)
class Row:
    """Totals for one request name (or ``Aggregated``) over a whole run."""

    name: str
    requests: int
    failures: int
    rps: float
    avg_ms: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class Sample:
    """The state of a run at one second of it (``t`` counts from the first sample)."""

    t: float
    users: int
    rps: float
    failures_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class Failure:
    """One kind of failed request: which request, why, how many times."""

    method: str
    name: str
    error: str
    occurrences: int


@dataclass
class RunResult:
    """One server under one load: its label, URL, totals, time series, failures and files."""

    label: str
    url: str
    total: Row
    endpoints: list[Row]
    history: list[Sample]
    failures: list[Failure] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _number(value: str | None) -> float | None:
    """Locust writes ``N/A`` (or nothing) before a value exists."""
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def _percentile(times: dict[float, int], count: int, share: float) -> float | None:
    """The percentile as Locust computes it over its rounded-time buckets: walking down
    from the slowest, the first time at which at most ``share`` of the requests remain."""
    if count == 0 or not times:
        return None
    within = int(count * share)
    counted = 0
    for ms in sorted(times, reverse=True):
        counted += times[ms]
        if count - counted <= within:
            return ms
    return min(times)


def _span(entries: list[dict[str, Any]]) -> float:
    """Seconds from the first request started to the last one, over all ``entries``."""
    return (max(float(e["last_request_timestamp"] or 0) for e in entries)
            - min(float(e["start_time"]) for e in entries))


def _entry_row(name: str, entries: list[dict[str, Any]], span: float) -> Row:
    """One row from one or more of Locust's serialized stats entries (summed); requests/s
    over ``span``, the whole run's, so that the paths' rates add up to the total."""
    times: dict[float, int] = {}
    for entry in entries:
        for ms, n in entry["response_times"].items():
            times[float(ms)] = times.get(float(ms), 0) + int(n)
    requests = sum(int(e["num_requests"]) for e in entries)
    total_ms = sum(float(e["total_response_time"]) for e in entries)
    return Row(
        name=name, requests=requests, failures=sum(int(e["num_failures"]) for e in entries),
        rps=requests / span if span > 0 else 0.0,
        avg_ms=total_ms / requests if requests else 0.0,
        p50_ms=_percentile(times, requests, 0.50), p90_ms=_percentile(times, requests, 0.90),
        p99_ms=_percentile(times, requests, 0.99),
        max_ms=max((float(e["max_response_time"]) for e in entries), default=None),
    )


def _reason(error: str) -> str:
    """``CatchResponseError('HTTP 503')`` → ``HTTP 503``: a check's message as it was given."""
    match = _CATCH.match(error)
    return match.group(2) if match else error


def read_final(path: Path) -> tuple[Row, list[Row], list[Failure]]:
    """(the aggregate, one row per request name, the failures) at the end of the run.

    These are the end-of-run numbers; ``_stats.csv`` is Locust's last once-a-second
    snapshot, which can miss up to the final second.
    """
    final: dict[str, list[dict[str, Any]]] = json.loads(path.read_text(encoding="utf-8"))
    entries = final["entries"]
    if not entries:
        raise ValueError(f"{path}: Locust made no request")
    span = _span(entries)
    rows = [_entry_row(e["name"], [e], span)
            for e in sorted(entries, key=lambda e: str(e["name"]))]
    failures = [Failure(str(e["method"]), str(e["name"]), _reason(str(e["error"])),
                        int(e["occurrences"])) for e in final["errors"]]
    failures.sort(key=lambda f: -f.occurrences)
    return _entry_row(AGGREGATED, entries, span), rows, failures


def read_history(path: Path) -> list[Sample]:
    """The per-second ``Aggregated`` samples of a ``_stats_history.csv`` file."""
    with path.open(newline="", encoding="utf-8") as f:
        records = [r for r in csv.DictReader(f) if r.get("Name") == AGGREGATED]
    samples: list[Sample] = []
    for before, record in zip([None, *records], records, strict=False):
        stamp = float(record["Timestamp"])
        done = (int(record["Total Request Count"]), int(record["Total Failure Count"]))
        # Requests/s from the counts: Locust's own current_rps lags a few seconds behind.
        if before is None:
            elapsed, done_before = 0.0, (0, 0)
        else:
            elapsed = stamp - float(before["Timestamp"])
            done_before = (int(before["Total Request Count"]),
                           int(before["Total Failure Count"]))
        samples.append(Sample(
            t=stamp - float(records[0]["Timestamp"]),
            users=int(record.get("User Count") or 0),
            rps=(done[0] - done_before[0]) / elapsed if elapsed > 0 else 0.0,
            failures_per_s=(done[1] - done_before[1]) / elapsed if elapsed > 0 else 0.0,
            p50_ms=_number(record.get("50%")),
            p95_ms=_number(record.get("95%")),
            p99_ms=_number(record.get("99%")),
        ))
    return samples


def read_run(label: str, url: str, prefix: Path) -> RunResult:
    """Everything Locust wrote under ``prefix`` (``--csv PREFIX``) for one run."""
    final = prefix.with_name(prefix.name + "_final.json")
    total, endpoints, failures = read_final(final)
    history = read_history(prefix.with_name(prefix.name + "_stats_history.csv"))
    files = sorted([*prefix.parent.glob(prefix.name + "_*.csv"), final])
    return RunResult(label, url, total, endpoints, history, failures, files)
