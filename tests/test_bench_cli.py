"""``greenserve bench``: real Locust runs against real servers, a few seconds each.

Each run is bounded by ``--run-time`` (2-3 s) and targets 127.0.0.1 only. Numbers are
checked for being there and adding up, never for being fast.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PACKAGE_ROOT
from greenserve.bench import options, report
from greenserve.bench.options import UsageError
from greenserve.bench.results import read_run

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "tests" / "apps"


def bench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m greenserve bench ARGS`` from tests/apps, as a user would run it."""
    env = {k: v for k, v in os.environ.items() if k not in ("GUNICORN_CMD_ARGS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(PACKAGE_ROOT)
    return subprocess.run([sys.executable, "-m", "greenserve", "bench", *args], cwd=APPS,
                          env=env, capture_output=True, text=True, timeout=timeout)


def table(markdown: str, heading: str) -> list[dict[str, str]]:
    """The rows of the Markdown table under ``## heading``, as dicts."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    return [dict(zip(cells[0], row, strict=True)) for row in cells[2:]]


def count(cell: str) -> int:
    return int(cell.replace(",", ""))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def app_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                                Path]:
    """One ``--app`` run with its report, shared by the tests that read it."""
    out = tmp_path_factory.mktemp("bench") / "report"
    result = bench("--app", "wsgi_apps:routes", "--paths", "/hello,/big:3", "--users", "5",
                   "--run-time", "3s", "--report", str(out))
    return result, out


def test_app_run_writes_the_report(app_run: tuple[subprocess.CompletedProcess[str], Path],
                                   ) -> None:
    result, out = app_run
    assert result.returncode == 0, result.stderr
    md = (out / "report.md").read_text()
    [total] = table(md, "Summary")
    assert total["server"] == "greenserve" and count(total["requests"]) > 0
    assert total["failures"] == "0"
    paths = {row["path"]: row for row in table(md, "Per path")}
    assert set(paths) == {"/hello", "/big"}
    assert all(row["failures"] == "0" for row in paths.values())
    # weighted 3:1; with hundreds of requests at least, "more" is a certainty, not a timing
    assert count(paths["/big"]["requests"]) > count(paths["/hello"]["requests"]) > 0
    assert sum(count(r["requests"]) for r in paths.values()) == count(total["requests"])
    rates = [float(r["req/s"].replace(",", "")) for r in paths.values()]
    assert abs(sum(rates) - float(total["req/s"].replace(",", ""))) < 0.2
    for name in ("greenserve_stats.csv", "greenserve_stats_history.csv",
                 "greenserve_failures.csv", "greenserve_final.json", "greenserve_server.log",
                 "requests_per_second.png", "latency_percentiles.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "requests_per_second.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '<img src="latency_percentiles.png"' in (out / "report.html").read_text()
    # the summary is printed too, and the server it started is gone
    assert total["requests"] in result.stdout
    port = int(total["URL"].rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_report_without_matplotlib_says_so_in_one_line(
        app_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """The no-plot report, built from a real run's files."""
    out = app_run[1]
    opts = options.parse(["--app", "wsgi_apps:routes", "-u", "5", "-t", "3s"])
    run = read_run("greenserve", "http://127.0.0.1:1", out / "greenserve")
    blocks = report.build(opts, [], [run], None, out)
    md, page = report.to_markdown(blocks), report.to_html(blocks)
    assert md.count(report.NO_PLOTS) == 1 and "![" not in md and "<img" not in page
    assert run.total.requests > 0 and run.history
    assert "## Warnings" not in md
    # comparing without the same worker count for both servers is called out
    unequal = options.parse(["--app", "a:b", "--compare", "gunicorn -k gevent"])
    assert "No -w in --server-args" in report.to_markdown(
        report.build(unequal, [], [run], None, out))
    equal = options.parse(["--app", "a:b", "--compare", "gunicorn", "--server-args", "-w 1"])
    assert "## Warnings" not in report.to_markdown(report.build(equal, [], [run], None, out))


def test_url_run_counts_failed_requests(serve, tmp_path: Path) -> None:
    server = serve("--access-logfile", "-", "wsgi_apps:routes")
    result = bench("--url", server.url, "--paths", "/hello,/status?code=503", "-u", "3",
                   "-t", "1s", "--report", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("greenserve bench: error: ")
    assert "requests failed" in result.stderr
    paths = {row["path"]: row for row in table((tmp_path / "report.md").read_text(), "Per path")}
    assert paths["/hello"]["failures"] == "0" and count(paths["/hello"]["requests"]) > 0
    assert paths["/status?code=503"]["failures"] == paths["/status?code=503"]["requests"]
    assert server.has_logged('"GET /hello HTTP/1.1" 200')
    [failure] = table((tmp_path / "report.md").read_text(), "Failures")
    assert failure["request"] == "GET /status?code=503" and failure["error"] == "HTTP 503"
    assert failure["count"] == paths["/status?code=503"]["failures"]
    assert "| HTTP 503 |" in result.stdout


def test_compare_runs_the_same_load_against_a_second_server(tmp_path: Path) -> None:
    """The peer spelled with placeholders: it gets a port chosen by the bench. The load is
    the template locustfile, which subclasses the built-in user and takes ``--paths`` too."""
    peer = f"{sys.executable} -m greenserve -w 1 -b {{bind}} {{app}}"
    result = bench("--app", "wsgi_apps:routes", "--server-args", "-w 1", "--compare", peer,
                   "-f", str(ROOT / "loadtests" / "locustfile.py"), "--paths", "/hello",
                   "-u", "3", "-t", "1s", "--report", str(tmp_path))
    assert result.returncode == 0, result.stderr
    md = (tmp_path / "report.md").read_text()
    rows = {row["server"]: row for row in table(md, "Summary")}
    assert set(rows) == {"greenserve", "greenserve-2"}
    assert all(count(r["requests"]) > 0 and r["failures"] == "0" for r in rows.values())
    ratios = {row["metric"]: row["greenserve/greenserve-2"] for row in table(md, "Comparison")}
    got = count(rows["greenserve"]["requests"]), count(rows["greenserve-2"]["requests"])
    assert re.fullmatch(r"\*\*\d+\.\d\d\*\*", ratios["req/s"]) and min(got) > 0
    assert (tmp_path / "greenserve-2_server.log").read_text().count("Listening at:") == 1
    assert {row["path"] for row in table(md, "Per path")} == {"/hello"}
    assert "locustfile.py" in md


@pytest.mark.parametrize(("args", "message"), [
    (["--users", "x", "--url", "http://127.0.0.1:1"], "argument -u/--users: invalid int"),
    (["--url", "http://127.0.0.1:1", "--app", "a:b"], "give exactly one of --url"),
    (["--app", "a:b", "--run-time", "soon"], "--run-time must look like 20s"),
    (["--app", "a:b", "--paths", "hello"], "each path must start with '/'"),
    (["--url", "ftp://127.0.0.1/"], "--url must be an http:// or https:// URL"),
    (["--app", "a:b", "--compare", "no-such-server-here"], "command not found"),
    (["--app", "wsgi_apps:nope", "-t", "1s"], "Failed to find attribute 'nope'"),
    (["--app", "a:b", "--server-args", "-w 1 -b :80"], "leave out -b/--bind"),
])
def test_a_bad_command_line_is_one_error_line(args: list[str], message: str) -> None:
    result = bench(*args)
    assert result.returncode in (1, 2) and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("greenserve bench: error: ") and message in line


def test_an_unreachable_url_is_one_error_line() -> None:
    result = bench("--url", f"http://127.0.0.1:{closed_port()}", "-t", "1s")
    assert result.returncode == 1
    assert result.stderr == (f"greenserve bench: error: cannot reach {result.args[-3]}: "
                             "[Errno 111] Connection refused\n")


def test_without_locust_it_says_what_to_install() -> None:
    code = ("import sys; sys.modules['locust'] = None\n"
            "from greenserve.cli import main; main(['bench', '--url', 'http://127.0.0.1:1'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    assert "pip install 'greenserve[bench]'" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_the_server_never_imports_the_bench() -> None:
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print(sorted(m for m in sys.modules if m.startswith("
            "('locust', 'matplotlib', 'greenserve.bench')))))\n"
            "from greenserve.cli import main; main(['--check-config', 'wsgi_apps:routes'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=APPS, capture_output=True,
                            text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr


def test_options_follow_locust() -> None:
    assert options.run_seconds("1m30s") == 90 and options.run_seconds("20") == 20
    assert options.parse_paths("/,/a:3,/b?x=1") == [("/", 1), ("/a", 3), ("/b?x=1", 1)]
    opts = options.parse(["-H", "http://127.0.0.1:8000/", "-u", "4"])
    assert (opts.url, opts.users, opts.spawn_rate, opts.run_seconds) == (
        "http://127.0.0.1:8000", 4, 4.0, 20)
    with pytest.raises(UsageError, match="--compare and --server-args need --app"):
        options.parse(["--url", "http://127.0.0.1:1", "--compare", "gunicorn"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_bench_stops_its_server(sig: int) -> None:
    """Ctrl-C (SIGINT to the whole group, as a terminal sends it) or SIGTERM mid-run."""
    env = {k: v for k, v in os.environ.items() if k != "GUNICORN_CMD_ARGS"}
    env["PYTHONPATH"] = str(PACKAGE_ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenserve", "bench", "--app", "wsgi_apps:routes",
         "--paths", "/hello", "-u", "2", "-t", "60s"],
        cwd=APPS, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # written once the server answers, before Locust starts
        url = re.search(r"at (http://\S+):", first)
        assert url, first
        os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
        rest = proc.stderr.read()
        assert proc.wait(30) == 130
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert rest == "greenserve bench: error: interrupted\n"
    port = int(url.group(1).rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_https_app_with_a_self_signed_certificate(tmp_path: Path) -> None:
    """``--certfile`` in ``--server-args`` makes the URL https; certificates are not checked."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    result = bench("--app", "wsgi_apps:routes", "--paths", "/hello", "-u", "2", "-t", "1s",
                   "--server-args", f"-w 1 --certfile {cert} --keyfile {key}",
                   "--report", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    [row] = table((tmp_path / "out" / "report.md").read_text(), "Summary")
    assert row["URL"].startswith("https://127.0.0.1:") and count(row["requests"]) > 0
    assert row["failures"] == "0"
