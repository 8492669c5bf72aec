"""loadtests/idle_conns.py and loadtests/ws_broadcast.py, run small against greenserve only.

The benchmarks are not part of the suite; these check that the scripts still start
greenserve (WSGI and ASGI), hold and re-check their connections, negotiate (or refuse)
permessage-deflate, and deliver every broadcast message. Nothing here is timed: only counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

LOADTESTS = Path(__file__).resolve().parent.parent / "loadtests"
SERVERS = "greenserve-wsgi,greenserve-asgi"


def run_script(name: str, output: Path, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(LOADTESTS / name), "--servers", SERVERS, "--no-pin",
         "--output", str(output), *args],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    results: list[dict[str, Any]] = json.loads(output.read_text())
    return results


def test_idle_conns_holds_every_connection_and_negotiates_as_asked(tmp_path: Path) -> None:
    conns = 40
    results = run_script("idle_conns.py", tmp_path / "idle.json", "--conns", str(conns),
                         "--settle", "0.2")
    labels = {r["label"] for r in results}
    assert {"greenserve-wsgi http", "greenserve-wsgi ws", "greenserve-asgi ws",
            "greenserve-wsgi ws +deflate", "greenserve-asgi ws +deflate"} <= labels
    for result in results:
        assert result["open_errors"] == [], result
        assert result["opened"] == result["alive"] == conns, result
        assert result["rss_after"] > 0 and result["rss_before"] > 0
        assert len(result["fresh_get_ms"]) == 20
        offered = "+deflate" in result["label"]
        refused = "--ws-per-message-deflate false" in result["label"]
        assert result["negotiated"] == (conns if offered and not refused else 0), result


def test_ws_broadcast_delivers_every_message_to_every_client(tmp_path: Path) -> None:
    results = run_script("ws_broadcast.py", tmp_path / "broadcast.json", "--clients", "30",
                         "--messages", "5", "--repeats", "2")
    assert [r["server"] for r in results] == SERVERS.split(",")
    for result in results:
        assert result["error"] == ""
        assert len(result["runs"]) == 2
        for run in result["runs"]:
            assert run["delivered"] == run["expected"] == 30 * 5
            assert not run["timed_out"]
