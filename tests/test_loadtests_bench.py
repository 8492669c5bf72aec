"""loadtests/bench.py, the ``make bench`` harness: its registry, its wrk parsing, one real cell.

The benchmark itself is not part of the suite; these check that the harness still starts
servers, measures with wrk, reports "not installed" peers and parses wrk's report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

LOADTESTS = Path(__file__).resolve().parent.parent / "loadtests"
BENCH = LOADTESTS / "bench.py"

WRK_REPORT = """\
Running 10s test @ http://127.0.0.1:8000/10k
  1 threads and 512 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    35.10ms   10.21ms 412.00ms   90.12%
    Req/Sec    14.20k     1.01k   15.90k    71.00%
  Latency Distribution
     50%   33.50ms
     75%   37.00ms
     90%   41.25ms
     99%    1.20s
  141234 requests in 10.00s, 1.38GB read
  Socket errors: connect 0, read 3, write 0, timeout 7
  Non-2xx or 3xx responses: 2
Requests/sec:  14123.40
Transfer/sec:    141.10MB
"""


@pytest.fixture
def benchlib() -> Iterator[None]:
    sys.path.insert(0, str(LOADTESTS))
    try:
        yield
    finally:
        sys.path.remove(str(LOADTESTS))


def _bench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=LOADTESTS.parent)


def test_list_names_every_server_and_row_of_both_tables() -> None:
    out = _bench("--list")
    assert out.returncode == 0, out.stderr
    for name in ("gunicorn", "pywsgi", "waitress", "uvicorn-httptools", "granian",
                 "greenserve", "greenserve-compiled", "greenserve-h11", "greenserve-asgi",
                 "uvicorn-h11",
                 "gunicorn-asgi", "10k-c64", "sleep-c512", "flask-c64", "asgi-hello-c64",
                 "fastapi-c64", "asgi-sleep-c512"):
        assert f" {name} " in out.stdout, name
    assert "--interface wsgi --workers 1" in out.stdout  # granian's WSGI interface


def test_only_refuses_unknown_names() -> None:
    out = _bench("--only", "greenserve,nosuchserver")
    assert out.returncode == 2
    assert "nosuchserver" in out.stderr


def test_wrk_report_is_parsed_with_errors_and_units(benchlib: None) -> None:
    from benchlib.wrk import parse_wrk

    result = parse_wrk(WRK_REPORT)
    assert result.rps == 14123.40
    assert result.requests == 141234
    assert (result.p50_ms, result.p99_ms) == (33.5, 1200.0)
    assert result.socket_errors == {"connect": 0, "read": 3, "write": 0, "timeout": 7}
    assert result.non2xx == 2
    assert result.errors == 12
    with pytest.raises(ValueError):
        parse_wrk("wrk: connection refused\n")


def test_a_peer_that_is_not_installed_gets_a_status_cell(
    benchlib: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from benchlib import servers
    from benchlib.rows import WSGI
    from benchlib.runner import Settings, start_row

    spec = servers.ServerSpec("ghost", "ghost", "wsgi", [sys.executable, "-c", "pass"],
                              ("no-such-distribution-here",))
    monkeypatch.setitem(servers.SERVERS, "ghost", spec)
    opts = Settings(duration=1, warmup=0, repeats=1, pick="median", max_extra=0,
                    wrk_threads=1, pin=False, only=set(), logs=tmp_path)
    cells: dict[str, dict[str, object]] = {}
    assert start_row(WSGI.rows[0], ["ghost"], opts, cells) == []
    assert cells == {"ghost": {"status": "not installed (no-such-distribution-here)"}}


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_one_real_cell_is_measured_and_reported(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    out = _bench("--suites", "wsgi", "--only", "greenserve,10k-c64", "--duration", "1",
                 "--warmup", "0", "--repeats", "1", "--max-extra", "0", "--no-pin",
                 "--output", str(output), timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads(output.read_text())
    row = data["suites"]["wsgi"]["rows"][0]
    assert row["key"] == "10k-c64"
    cell = row["servers"]["greenserve"]
    assert cell["rps"] > 0
    assert sum(cell["errors"].values()) == 0
    assert "| WSGI 10 KB hello, c64 |" in out.stdout


def test_ratios_are_also_paired_repeat_by_repeat(benchlib: None) -> None:
    """A host that slows down through the run moves the ratio of medians; the ratio of
    each repeat's two cells (measured seconds apart) shows it."""
    from benchlib.report import render, summarise
    from benchlib.rows import WSGI

    def run(repeat: int, rps: float, disturbed: bool = False) -> dict[str, object]:
        return {"repeat": repeat, "rps": rps, "p50_ms": 1.0, "p99_ms": 2.0,
                "cpu_us_per_request": 1e6 / rps, "socket_errors": {}, "non2xx": 0,
                "disturbed": disturbed}

    row = WSGI.rows[0]
    results = {row.key: {
        "greenserve": {"status": "measured",
                       "runs": [run(1, 30000), run(2, 20000), run(3, 15000, True)]},
        "gunicorn": {"status": "measured", "runs": [run(1, 10000), run(2, 6000),
                                                    run(3, 5000)]},
        "granian": {"status": "not installed"},
    }}
    [summary] = summarise(WSGI, results, "median")
    assert summary["paired"]["greenserve/gunicorn"] == [3.0, 3.33]  # repeat 3: disturbed
    assert summary["paired"]["greenserve/granian"] is None
    table = render(WSGI, [summary], ["gunicorn", "granian", "greenserve"])
    assert f"| {row.label} | **3.17** (3.0, 3.33) | - |" in table
