"""Server hooks from a gunicorn.conf.py fire at the right moments, with the right objects."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import requests
from master_helpers import children, wait_for

CONF = '''
import json, os

MARKS = {marks!r}

def _mark(name, **data):
    with open(MARKS, "a") as f:
        f.write(json.dumps({{"hook": name, "pid": os.getpid(), **data}}) + "\\n")

def on_starting(server):
    _mark("on_starting", master=server.pid, workers=server.num_workers)

def when_ready(server):
    _mark("when_ready", listeners=len(server.LISTENERS))

def on_reload(server):
    _mark("on_reload")

def pre_fork(server, worker):
    _mark("pre_fork", age=worker.age)

def post_fork(server, worker):
    _mark("post_fork", age=worker.age, ppid=worker.ppid)

def post_patch(worker):
    import socket, gevent.socket
    _mark("post_patch", patched=socket.socket is gevent.socket.socket,
          app_imported="master_apps" in __import__("sys").modules)

def post_worker_init(worker):
    _mark("post_worker_init", age=worker.age, booted=worker.booted)

def pre_request(worker, req):
    _mark("pre_request", method=req.method, path=req.path,
          headers=[h for h in req.headers if h[0] == "X-TEST"])

def post_request(worker, req, environ, resp):
    _mark("post_request", path=req.path, status=resp.status, sent=resp.sent,
          environ_path=environ.get("PATH_INFO"))

def worker_int(worker):
    _mark("worker_int")

def worker_exit(server, worker):
    _mark("worker_exit", age=worker.age)

def child_exit(server, worker):
    _mark("child_exit", age=worker.age)

def nworkers_changed(server, new_value, old_value):
    _mark("nworkers_changed", new=new_value, old=old_value)

def on_exit(server):
    _mark("on_exit")
'''


def _marks(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _hooks(path: Path) -> list[object]:
    return [m["hook"] for m in _marks(path)]


def test_hooks_fire_in_order_with_their_objects(serve, tmp_path: Path) -> None:
    marks = tmp_path / "marks.jsonl"
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(textwrap.dedent(CONF.format(marks=str(marks))))
    server = serve("-c", str(conf), "-w", "1", "master_apps:app")
    wait_for(lambda: "post_worker_init" in _hooks(marks))
    assert requests.get(server.url + "/x", headers={"X-Test": "1"}).status_code == 200
    wait_for(lambda: "post_request" in _hooks(marks))
    names = _hooks(marks)
    assert names[:7] == ["on_starting", "nworkers_changed", "pre_fork", "when_ready",
                         "post_fork", "post_patch", "post_worker_init"] or names[:7] == [
        "on_starting", "nworkers_changed", "pre_fork", "post_fork", "when_ready",
        "post_patch", "post_worker_init"]
    by = {m["hook"]: m for m in _marks(marks)}
    assert by["on_starting"]["master"] == server.proc.pid
    assert by["nworkers_changed"]["new"] == 1 and by["nworkers_changed"]["old"] is None
    assert by["post_patch"]["patched"] is True and by["post_patch"]["app_imported"] is False
    assert by["post_fork"]["ppid"] == server.proc.pid
    assert by["pre_request"]["method"] == "GET" and by["pre_request"]["path"] == "/x"
    assert by["pre_request"]["headers"] == [["X-TEST", "1"]]
    assert by["post_request"]["status"].startswith("200")
    assert by["post_request"]["environ_path"] == "/x" and by["post_request"]["sent"] > 0
    (worker,) = children(server.proc.pid)
    assert by["post_worker_init"]["pid"] == worker

    server.signal(signal.SIGHUP)
    wait_for(lambda: "on_reload" in _hooks(marks) and "child_exit" in _hooks(marks),
             timeout=30)
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    names = _hooks(marks)
    assert names[-1] == "on_exit"
    assert names.count("worker_exit") == 2 and names.count("child_exit") == 2


ABORT_CONF = '''
import json, os
MARKS = {marks!r}
def _mark(name):
    with open(MARKS, "a") as f:
        f.write(json.dumps({{"hook": name, "pid": os.getpid()}}) + "\\n")
def worker_int(worker):
    _mark("worker_int")
def worker_abort(worker):
    _mark("worker_abort")
def pre_exec(server):
    _mark("pre_exec")
'''


def test_worker_int_worker_abort_and_pre_exec(serve, tmp_path: Path) -> None:
    import os
    import threading

    marks = tmp_path / "marks.jsonl"
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(textwrap.dedent(ABORT_CONF.format(marks=str(marks))))
    pidfile = tmp_path / "m.pid"
    server = serve("-c", str(conf), "-w", "1", "--timeout", "2", "-p", str(pidfile),
                   "master_apps:app")
    (first,) = wait_for(lambda: children(server.proc.pid))
    wait_for(lambda: requests.get(server.url + "/").status_code == 200)
    os.kill(first, signal.SIGINT)  # worker_int, then the master replaces the worker
    wait_for(lambda: "worker_int" in _hooks(marks))
    (second,) = wait_for(lambda: (c := children(server.proc.pid)) and first not in c and c)
    wait_for(lambda: requests.get(server.url + "/").text == str(second))

    def block() -> None:
        try:
            requests.get(server.url + "/block?s=20", timeout=20)
        except requests.RequestException:
            pass

    threading.Thread(target=block, daemon=True).start()
    wait_for(lambda: "worker_abort" in _hooks(marks), timeout=20)
    server.signal(signal.SIGUSR2)
    wait_for(lambda: "pre_exec" in _hooks(marks), timeout=20)
    new = wait_for(lambda: pidfile.exists() and int(pidfile.read_text() or 0) != server.proc.pid
                   and int(pidfile.read_text()), timeout=20)
    os.kill(new, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{new}").exists(), timeout=20)
