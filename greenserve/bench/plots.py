"""The report's plots, drawn with matplotlib when it is installed (the ``bench`` extra).

Two PNG files, one line per server: requests/s over time, and response-time percentiles
(p50, p95, p99 over Locust's recent window) over time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from greenserve.bench.results import RunResult, Sample

RPS_PNG = "requests_per_second.png"
LATENCY_PNG = "latency_percentiles.png"
_PERCENTILES = (("p50", "-"), ("p95", "--"), ("p99", ":"))


def available() -> bool:
    """Whether matplotlib can be imported (without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


def draw(runs: list[RunResult], out_dir: Path) -> list[Path]:
    """Draw both plots into ``out_dir``; their paths. Needs matplotlib (see :func:`available`)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    from matplotlib import pyplot

    rps_path, latency_path = out_dir / RPS_PNG, out_dir / LATENCY_PNG
    fig, ax = pyplot.subplots(figsize=(8, 4))
    for run in runs:
        ax.plot([s.t for s in run.history], [s.rps for s in run.history], label=run.label)
    _finish(ax, "requests/s", "Requests per second")
    fig.savefig(rps_path, dpi=100, bbox_inches="tight")
    pyplot.close(fig)

    fig, ax = pyplot.subplots(figsize=(8, 4))
    for index, run in enumerate(runs):
        color = f"C{index}"
        for name, style in _PERCENTILES:
            t, values = _series(run.history, name)
            ax.plot(t, values, style, color=color, label=f"{run.label} {name}")
    _finish(ax, "response time (ms)", "Response-time percentiles (Locust's last 10 s)")
    fig.savefig(latency_path, dpi=100, bbox_inches="tight")
    pyplot.close(fig)
    return [rps_path, latency_path]


def _series(history: list[Sample], name: str) -> tuple[list[float], list[float]]:
    """(times, values) of one percentile, leaving out the seconds before it had a value."""
    points = [(s.t, getattr(s, f"{name}_ms")) for s in history]
    kept = [(t, float(v)) for t, v in points if v is not None]
    return [t for t, _ in kept], [v for _, v in kept]


def _finish(ax: Any, ylabel: str, title: str) -> None:
    ax.set_xlabel("seconds since the first sample")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
