"""The pre-fork master: workers, replacement, TTIN/TTOU, boot failures, preload, pidfile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from master_helpers import children, title, wait_for, worker_pids_seen

from conftest import PACKAGE_ROOT, TESTS


def test_workers_are_forked_and_share_the_listener(serve) -> None:
    server = serve("-w", "2", "master_apps:app")
    workers = wait_for(lambda: len(children(server.proc.pid)) == 2 and children(server.proc.pid))
    assert server.proc.pid not in workers
    seen = worker_pids_seen(server.url, tries=60)
    assert seen <= workers and seen  # every answer came from a worker, never the master


def test_process_titles(serve) -> None:
    pytest.importorskip("setproctitle")
    server = serve("-w", "1", "-n", "myapp", "master_apps:app")
    (worker,) = wait_for(lambda: children(server.proc.pid))
    assert title(server.proc.pid) == "greenserve: master [myapp]"
    wait_for(lambda: title(worker) == "greenserve: worker [myapp]")


def test_killed_worker_is_replaced_while_others_answer(serve) -> None:
    server = serve("-w", "2", "master_apps:app")
    workers = wait_for(lambda: len(children(server.proc.pid)) == 2 and children(server.proc.pid))
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    started = time.monotonic()
    failures = 0
    while time.monotonic() - started < 1.5:
        try:
            requests.get(server.url + "/", timeout=5)
        except requests.RequestException:
            failures += 1
    new = wait_for(lambda: len(children(server.proc.pid)) == 2 and children(server.proc.pid))
    assert victim not in new
    assert failures == 0
    assert time.monotonic() - started < 5
    assert server.has_logged(f"[ERROR] Worker (pid:{victim}) was sent SIGKILL! Perhaps out "
                             "of memory?"), server.logs()


def test_a_worker_killed_by_another_signal_is_a_warning(serve) -> None:
    """gunicorn's levels for a worker's death by signal: KILL an error, others a warning."""
    server = serve("-w", "1", "master_apps:app")
    (victim,) = wait_for(lambda: children(server.proc.pid))
    os.kill(victim, signal.SIGUSR2)  # (a worker leaves USR2 at its default: it ends)
    assert server.has_logged(f"[WARNING] Worker (pid:{victim}) was sent SIGUSR2!"), server.logs()
    assert wait_for(lambda: (new := children(server.proc.pid)) and victim not in new)


def test_ttin_and_ttou_change_the_worker_count(serve) -> None:
    server = serve("-w", "1", "master_apps:app")
    wait_for(lambda: len(children(server.proc.pid)) == 1)
    server.signal(signal.SIGTTIN)  # one at a time: the kernel merges identical pending signals
    wait_for(lambda: len(children(server.proc.pid)) == 2)
    server.signal(signal.SIGTTIN)
    wait_for(lambda: len(children(server.proc.pid)) == 3)
    server.signal(signal.SIGTTOU)
    wait_for(lambda: len(children(server.proc.pid)) == 2)
    assert len(worker_pids_seen(server.url, tries=5)) >= 1


def test_app_that_cannot_load_stops_the_master(serve) -> None:
    server = serve("-w", "2", "cfgapp_badimport:app", wait=False)
    assert server.wait(20) == 4
    assert server.has_logged("App failed to load."), server.logs()


def test_a_replacement_that_cannot_load_leaves_the_running_workers(serve, tmp_path: Path) -> None:
    """A worker whose replacement cannot load the app (the code on disk broke since boot):
    the master keeps the workers that serve and tries again (gunicorn halts the master)."""
    broken = tmp_path / "broken"
    server = serve("-w", "2", "master_apps:app", env={"MASTER_APPS_BROKEN_IF": str(broken)})
    workers = wait_for(lambda: len(children(server.proc.pid)) == 2 and children(server.proc.pid))
    wait_for(lambda: server.logs().count("Booting worker") == 2)
    broken.touch()
    victim, survivor = sorted(workers)
    os.kill(victim, signal.SIGKILL)
    assert server.has_logged("[ERROR] A new worker failed to boot; the running workers stay"), \
        server.logs()
    assert requests.get(server.url + "/pid", timeout=10).text == str(survivor)
    assert server.proc.poll() is None
    broken.unlink()  # the code is mended: a later try boots
    wait_for(lambda: server.logs().count("Booting worker") == 3, timeout=45)
    assert len(children(server.proc.pid)) == 2


def test_malformed_app_spec_is_one_line_before_forking(serve) -> None:
    server = serve("master_apps:app(", wait=False)
    assert server.wait(20) == 4
    assert server.logs().strip().startswith("greenserve: error:")
    assert len(server.logs().strip().splitlines()) == 1


@pytest.mark.parametrize("preload", [False, True])
def test_app_importing_sockets_and_ssl_works_with_and_without_preload(serve, preload) -> None:
    args = ["--preload"] if preload else []
    server = serve("-w", "2", *args, "master_apps:app")
    import_pid, patched_at_import, patched_now = requests.get(server.url + "/probe").text.split()
    assert patched_at_import == "True" and patched_now == "True"
    if preload:
        assert int(import_pid) == server.proc.pid  # imported once, in the master
    else:
        assert int(import_pid) in children(server.proc.pid)
    assert "imported before gevent patching" not in server.logs()


def test_pidfile_is_written_and_removed(serve, tmp_path: Path) -> None:
    pidfile = tmp_path / "gs.pid"
    server = serve("-p", str(pidfile), "master_apps:app")
    assert int(pidfile.read_text()) == server.proc.pid
    server.signal(signal.SIGTERM)
    assert server.wait(15) == 0
    assert not pidfile.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_workers_drop_privileges(serve) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    # --preload: the interpreter here lives under /root, which 'nobody' cannot read, so the
    # worker must not need to import anything after it switched users.
    server = serve("--preload", "-u", "nobody", "-g", str(nobody.pw_gid), "master_apps:app")
    assert requests.get(server.url + "/uid").text == f"{nobody.pw_uid} {nobody.pw_gid}"
    assert os.stat(f"/proc/{server.proc.pid}").st_uid == 0  # the master keeps its user


def test_daemon_mode_and_winch(tmp_path: Path) -> None:
    pidfile = tmp_path / "d.pid"
    log = tmp_path / "error.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS / "apps"), str(PACKAGE_ROOT)])}
    subprocess.run(
        [sys.executable, "-m", "greenserve", "-D", "-w", "2", "-p", str(pidfile),
         "--error-logfile", str(log), "-b", "127.0.0.1:0", "master_apps:app"],
        env=env, cwd=str(TESTS / "apps"), check=True, timeout=20,
    )
    master = wait_for(lambda: pidfile.exists() and int(pidfile.read_text() or 0))
    try:
        wait_for(lambda: len(children(master)) == 2)
        os.kill(master, signal.SIGWINCH)
        wait_for(lambda: not children(master))
        os.kill(master, 0)  # the master is still alive
    finally:
        os.kill(master, signal.SIGTERM)
    wait_for(lambda: not pidfile.exists())
    assert "Listening at:" in log.read_text()


def _listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:port (Linux /proc/net/tcp, state 0A)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
            count += 1
    return count


def test_reuse_port_gives_each_worker_its_own_socket(serve) -> None:
    server = serve("-w", "2", "--reuse-port", "master_apps:app")
    wait_for(lambda: _listening_sockets(server.port) == 3)  # the master's + one per worker
    seen = worker_pids_seen(server.url, tries=40)
    assert seen <= children(server.proc.pid) and len(seen) == 2


def test_without_reuse_port_the_socket_is_shared(serve) -> None:
    server = serve("-w", "2", "master_apps:app")
    wait_for(lambda: len(children(server.proc.pid)) == 2)
    assert _listening_sockets(server.port) == 1


def test_default_proc_name_from_the_config_file(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("setproctitle")
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("default_proc_name = 'shop'\n")
    server = serve("-c", str(conf), "master_apps:app")
    named = serve("-c", str(conf), "-n", "web", "master_apps:app")  # --name still wins
    assert wait_for(lambda: title(server.proc.pid) == "greenserve: master [shop]")
    assert wait_for(lambda: title(named.proc.pid) == "greenserve: master [web]")


def test_stdio_inheritance_keeps_a_daemons_output(tmp_path: Path) -> None:
    # -R: the daemon's stdout/stderr stay where they were (a file here), not /dev/null.
    pidfile = tmp_path / "d.pid"
    out = tmp_path / "out.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS / "apps"), str(PACKAGE_ROOT)]),
           "PYTHONUNBUFFERED": "1"}
    with open(out, "w") as stdout:
        subprocess.run(
            [sys.executable, "-m", "greenserve", "-D", "-R", "-w", "1", "-p", str(pidfile),
             "-b", "127.0.0.1:0", "master_apps:app"],
            env=env, cwd=str(TESTS / "apps"), stdout=stdout, stderr=stdout, check=True,
            timeout=20)
    master = wait_for(lambda: pidfile.exists() and int(pidfile.read_text() or 0))
    try:
        wait_for(lambda: "Booting worker" in out.read_text())
    finally:
        os.kill(master, signal.SIGTERM)
    wait_for(lambda: not pidfile.exists())
    assert "Listening at:" in out.read_text()


def test_threads_is_accepted_with_a_note(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--threads", "4", "--worker-tmp-dir", "/dev/shm", "master_apps:app")
    assert requests.get(server.url + "/", timeout=5).status_code == 200
    assert server.has_logged("--threads 4: each worker serves up to 1000 requests at once in "
                             "greenlets (--worker-connections), not threads")
    assert "not implemented" not in server.logs()


def test_spew_prints_the_lines_a_worker_runs(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--spew", "master_apps:app")
    assert requests.get(server.url + "/", timeout=20).status_code == 200
    assert server.has_logged("master_apps:")  # module:line: source, for the app's own lines
