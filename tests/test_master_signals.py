"""Master signals under load: HUP rolls workers with zero failed requests; USR1; USR2."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import requests
from load_client import Load
from master_helpers import children, wait_for


def test_hup_under_load_drops_nothing(serve) -> None:
    server = serve("-w", "2", "master_apps:app")
    first = wait_for(lambda: len(children(server.proc.pid)) == 2 and children(server.proc.pid))
    load = Load(server.url + "/", threads=8).start()
    generations = [first]
    for _ in range(3):
        time.sleep(0.7)
        server.signal(signal.SIGHUP)
        previous = generations[-1]
        generations.append(wait_for(
            lambda p=previous: (c := children(server.proc.pid)) and len(c) == 2
            and not (c & p) and c, timeout=30))
    time.sleep(0.5)
    load.stop()
    assert load.failures == [], load.failures[:5]
    assert load.ok > 200
    assert len(load.pids) >= 6  # requests were answered by every generation of workers
    assert server.has_logged("Reload complete"), server.logs()


def test_hup_with_a_broken_app_keeps_the_old_workers(serve, tmp_path: Path) -> None:
    app = tmp_path / "flaky_app.py"
    app.write_text("def app(environ, start_response):\n"
                   "    start_response('200 OK', [])\n    return [b'v1']\n")
    server = serve("-w", "1", "--pythonpath", str(tmp_path), "flaky_app:app")
    before = wait_for(lambda: children(server.proc.pid))
    assert requests.get(server.url).text == "v1"  # the worker is up before the bad deploy
    app.write_text("this is not python\n")
    server.signal(signal.SIGHUP)
    wait_for(lambda: "Reload failed" in server.logs(), timeout=30)
    assert requests.get(server.url).text == "v1"
    assert wait_for(lambda: children(server.proc.pid) == before)


def test_hup_rereads_a_relative_config_file_after_a_relative_chdir(
        serve, tmp_path: Path) -> None:
    # Both paths are relative to where greenserve started (test servers start in
    # tests/apps); the master has changed into the --chdir directory since.
    conf = tmp_path / "conf.py"
    conf.write_text("workers = 1\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "chdir_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n    return [b'ok']\n")
    apps = Path(__file__).resolve().parent / "apps"
    server = serve("-c", os.path.relpath(conf, apps), "--chdir", os.path.relpath(site, apps),
                   "chdir_app:app")
    wait_for(lambda: len(children(server.proc.pid)) == 1)
    conf.write_text("workers = 2\n")
    server.signal(signal.SIGHUP)
    wait_for(lambda: len(children(server.proc.pid)) == 2, timeout=30)
    assert requests.get(server.url, timeout=10).text == "ok"
    assert "does not exist" not in server.logs()


def test_usr1_reopens_log_files(serve, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = serve("-w", "1", "--access-logfile", str(access), "master_apps:app")
    requests.get(server.url + "/before")
    wait_for(lambda: access.exists() and "/before" in access.read_text())
    rotated = tmp_path / "access.log.1"
    access.rename(rotated)
    server.signal(signal.SIGUSR1)
    time.sleep(0.5)
    requests.get(server.url + "/after")
    wait_for(lambda: access.exists() and "/after" in access.read_text())
    assert "/after" not in rotated.read_text()


def test_usr2_starts_a_new_master_on_the_same_sockets(serve, tmp_path: Path) -> None:
    pidfile = tmp_path / "m.pid"
    server = serve("-w", "1", "-p", str(pidfile), "master_apps:app")
    old = server.proc.pid
    server.signal(signal.SIGUSR2)
    new = wait_for(lambda: pidfile.exists() and int(pidfile.read_text() or 0) != old
                   and int(pidfile.read_text()))
    assert int(Path(str(pidfile) + ".oldbin").read_text()) == old
    assert new in children(old)
    wait_for(lambda: len(children(new)) == 1)
    load = Load(server.url + "/", threads=4).start()
    time.sleep(0.5)
    server.signal(signal.SIGTERM)  # finish the upgrade: the old master goes away
    assert server.wait(20) == 0
    time.sleep(0.5)
    load.stop()
    try:
        assert load.failures == [], load.failures[:5]
        assert requests.get(server.url + "/").text == str(min(children(new)))
    finally:
        os.kill(new, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{new}").exists(), timeout=20)
