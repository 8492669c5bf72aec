"""Autobahn|Testsuite's fuzzing client against the WSGI and the ASGI echo apps.

The echoes are ``tests/apps/ws_apps.py`` (WSGI, greenserve's WebSocket API) and
``tests/apps/asgi_ws_raw.py`` (raw ASGI: text echoed as text, bytes as bytes), both at
``/echo``. The suite is Python 2 only, so it is found rather than installed:
``$AUTOBAHN_WSTEST``, ``.venv-autobahn/bin/wstest`` (``make autobahn`` builds it with a
Python 2.7) or ``wstest`` on the PATH. Without it the tests are skipped.

By default the fast core cases run (framing, pings, reserved bits and opcodes, fragmentation,
UTF-8, close handling, auto-fragmentation: about 250 cases in a few seconds per echo).
``AUTOBAHN_CASES=all`` adds the slow ones: 9.* (large messages, performance) and 12.*/13.*
(permessage-deflate), about 15 minutes per echo.
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
ECHOES = {"wsgi": "ws_apps:app", "asgi": "asgi_ws_raw:app"}


def _wstest() -> str | None:
    candidates = [os.environ.get("AUTOBAHN_WSTEST"),
                  str(ROOT / ".venv-autobahn" / "bin" / "wstest"), shutil.which("wstest")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _summary(agent: str, results: dict[str, dict[str, str]]) -> str:
    """One line per case category (the number before the first dot): counts by verdict."""
    by_category: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter)
    for case, result in results.items():
        by_category[case.split(".")[0]][result["behavior"]] += 1
    total = collections.Counter(r["behavior"] for r in results.values())
    lines = [f"Autobahn {agent}: {len(results)} cases: {dict(sorted(total.items()))}"]
    lines += [f"  {category:>2}.*: {dict(sorted(counts.items()))}"
              for category, counts in sorted(by_category.items(), key=lambda i: int(i[0]))]
    return "\n".join(lines)


@pytest.mark.parametrize("interface", list(ECHOES))
def test_autobahn_fuzzingclient_against_the_echo(serve, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                 interface: str) -> None:
    wstest = _wstest()
    if wstest is None:
        pytest.skip("Autobahn|Testsuite (wstest, Python 2.7) not installed: see make autobahn")
    full = os.environ.get("AUTOBAHN_CASES") == "all"
    server: ServerProcess = serve(ECHOES[interface])
    agent = f"greenserve-{interface}"
    spec = {
        "outdir": str(tmp_path / "reports"),
        "servers": [{"agent": agent, "url": f"ws://127.0.0.1:{server.port}/echo"}],
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
    results = json.loads((tmp_path / "reports" / "index.json").read_text())[agent]
    print(_summary(agent, results))
    failed = {case: (r["behavior"], r["behaviorClose"]) for case, r in results.items()
              if r["behavior"] not in PASSING or r["behaviorClose"] not in PASSING}
    assert not failed, f"Autobahn cases failed (reports in {tmp_path}): {failed}"
    assert len(results) > (500 if full else 240)
