"""Django next to asyncio in a gevent worker (tests/apps/djangoproj).

- Django's ASGI handler on the worker's loop: async views, ``sync_to_async`` ORM calls.
- The WSGI path (greenserve's recommendation for Django) while other greenlets run event
  loops: ``asyncio.run()`` in views, the ORM, ``async_to_sync``. Without the running-loop
  hook every one of these fails (``asyncio.run() cannot be called from a running event
  loop``, ``SynchronousOnlyOperation``, ``You cannot use AsyncToSync in the same thread as an
  async event loop``).

Django is imported only by the subprocesses.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from test_asgi_frameworks import concurrent_gets

from conftest import PACKAGE_ROOT, TESTS, ServerProcess

if importlib.util.find_spec("django") is None:
    pytest.skip("django is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def django_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    db = tmp_path_factory.mktemp("django-asgi") / "db.sqlite3"
    env = {"DJANGO_SETTINGS_MODULE": "djangoproj.settings", "DJANGO_DB_PATH": str(db)}
    full = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(TESTS / "apps"),
                                                                 str(PACKAGE_ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", "import django; from django.core.management import "
         "call_command; django.setup(); call_command('migrate', verbosity=0)"],
        cwd=str(TESTS / "apps"), env=full, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return env


def _server(args: list[str], env: dict[str, str]) -> Iterator[ServerProcess]:
    server = ServerProcess(["-w", "1", "-b", "127.0.0.1:0", *args], env)
    try:
        yield server.wait_listening()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def django_asgi(django_env: dict[str, str]) -> Iterator[ServerProcess]:
    yield from _server(["djangoproj.asgi"], django_env)


@pytest.fixture(scope="module")
def django_wsgi(django_env: dict[str, str]) -> Iterator[ServerProcess]:
    yield from _server(["djangoproj.wsgi"], django_env)


@pytest.fixture(scope="module")
def django_mixed(django_env: dict[str, str]) -> Iterator[ServerProcess]:
    """One worker, both entry points: ASGI under /a, WSGI at /."""
    yield from _server(["--mount", "/a=djangoproj.asgi", "djangoproj.wsgi"], django_env)


def test_django_asgi_async_view_with_orm(django_asgi: ServerProcess) -> None:
    resp = requests.get(django_asgi.url + "/async/orm/", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["users"] == 0 and resp.json()["again"] == 0
    # sync_to_async runs in a greenlet (patched threads), in the worker's one OS thread
    view, sensitive, insensitive = resp.json()["threads"]
    assert view == sensitive == insensitive
    assert django_asgi.has_logged("appears unsupported")  # Django does not speak lifespan


def test_django_asgi_concurrent_async_and_sync_views(django_asgi: ServerProcess) -> None:
    paths = ["/async/orm/", "/async/sleep/?s=0.2", "/asyncio/orm/"] * 20
    responses = concurrent_gets(django_asgi, paths)
    assert all(r.startswith(b"HTTP/1.1 200") for r in responses), [r[:200] for r in responses]


def test_django_wsgi_orm_while_other_views_run_event_loops(django_wsgi: ServerProcess) -> None:
    paths = ["/asyncio/hold/?s=0.5"] * 10 + ["/asyncio/orm/"] * 10 + ["/asyncio/bridge/"] * 10
    responses = concurrent_gets(django_wsgi, paths)
    bad = [r[:300] for r in responses if not r.startswith(b"HTTP/1.1 200")]
    assert not bad
    assert "Traceback" not in django_wsgi.logs()


def test_django_wsgi_views_beside_a_running_asgi_loop(django_mixed: ServerProcess) -> None:
    """The same WSGI views while the worker's own ASGI loop has tasks under way (Django's
    async views, mounted at /a): asyncio.run(), the ORM and async_to_sync in WSGI views."""
    paths = (["/a/async/orm/", "/a/async/sleep/?s=0.3"] * 10
             + ["/asyncio/hold/?s=0.3", "/asyncio/orm/", "/asyncio/bridge/"] * 10)
    responses = concurrent_gets(django_mixed, paths)
    bad = [r[:300] for r in responses if not r.startswith(b"HTTP/1.1 200")]
    assert not bad
    assert "Traceback" not in django_mixed.logs()


def test_django_admin_still_works_on_asgi(django_asgi: ServerProcess) -> None:
    resp = requests.get(django_asgi.url + "/admin/login/", timeout=10)
    assert resp.status_code == 200 and "csrfmiddlewaretoken" in resp.text


@pytest.mark.parametrize("path", [Path("djangoproj/asgi.py"), Path("djangoproj/wsgi.py")])
def test_entry_points_exist(path: Path) -> None:
    assert (TESTS / "apps" / path).is_file()
