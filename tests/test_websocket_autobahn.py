"""Autobahn|Testsuite's fuzzing client against the WSGI echo app (tests/apps/ws_apps.py).

The suite is Python 2 only, so it is found rather than installed: ``$AUTOBAHN_WSTEST``,
``.venv-autobahn/bin/wstest`` (``make autobahn`` builds it with a Python 2.7) or ``wstest``
on the PATH. Without it the test is skipped.

By default the fast core cases run (framing, pings, reserved bits and opcodes, fragmentation,
UTF-8, close handling, auto-fragmentation: about 250 cases in a few seconds).
``AUTOBAHN_CASES=all`` adds the slow ones: 9.* (large messages, performance) and 12.*/13.*
(permessage-deflate), about 15 minutes.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, ServerProcess

FAST_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
# What Autobahn counts as a pass: NON-STRICT (within tolerance) and INFORMATIONAL (no
# verdict, e.g. which close code the server echoes) are not failures.
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


def _wstest() -> str | None:
    candidates = [os.environ.get("AUTOBAHN_WSTEST"),
                  str(ROOT / ".venv-autobahn" / "bin" / "wstest"), shutil.which("wstest")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def test_autobahn_fuzzingclient_against_the_wsgi_echo(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wstest = _wstest()
    if wstest is None:
        pytest.skip("Autobahn|Testsuite (wstest, Python 2.7) not installed: see make autobahn")
    full = os.environ.get("AUTOBAHN_CASES") == "all"
    server: ServerProcess = serve("ws_apps:app")
    spec = {
        "outdir": str(tmp_path / "reports"),
        "servers": [{"agent": "greenserve-wsgi", "url": f"ws://127.0.0.1:{server.port}/echo"}],
        "cases": ["*"] if full else FAST_CASES,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    (tmp_path / "fuzzingclient.json").write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([wstest, "-m", "fuzzingclient", "-s", "fuzzingclient.json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=3600 if full else 300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((tmp_path / "reports" / "index.json").read_text())["greenserve-wsgi"]
    counts = collections.Counter(r["behavior"] for r in results.values())
    print(f"Autobahn: {len(results)} cases: {dict(counts)}")
    failed = {case: (r["behavior"], r["behaviorClose"]) for case, r in results.items()
              if r["behavior"] not in PASSING or r["behaviorClose"] not in PASSING}
    assert not failed, f"Autobahn cases failed (reports in {tmp_path}): {failed}"
    assert len(results) > (500 if full else 240)
