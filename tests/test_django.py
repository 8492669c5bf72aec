"""A real Django project (tests/apps/djangoproj) through greenserve: the admin login flow with
CSRF and sessions on sqlite, plus plain views for request bodies and ``request.META``.

Django is never imported in the test process (only in subprocesses), so its import-time
warnings cannot trip ``filterwarnings = error``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests

from conftest import PACKAGE_ROOT, TESTS, RawClient, ServerProcess

USERNAME = "admin"
PASSWORD = "s3cret-Passw0rd"
_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

_SETUP = """
import django
from django.core.management import call_command
django.setup()
call_command("migrate", interactive=False, verbosity=0)
call_command("createsuperuser", interactive=False, username="{user}",
             email="admin@example.com", verbosity=0)
"""


def _django_env(db_path: Path) -> dict[str, str]:
    return {"DJANGO_SETTINGS_MODULE": "djangoproj.settings", "DJANGO_DB_PATH": str(db_path)}


def _setup_database(env: dict[str, str]) -> None:
    """``migrate`` and ``createsuperuser`` into the sqlite file, in a fresh interpreter."""
    full_env = dict(os.environ)
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join([str(TESTS / "apps"), str(PACKAGE_ROOT)])
    full_env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    done = subprocess.run(
        [sys.executable, "-c", _SETUP.format(user=USERNAME)],
        cwd=str(TESTS / "apps"), env=full_env, capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0:
        pytest.fail(f"django setup failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="module")
def django_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One migrated database and one server for the whole module (setup takes ~1-2 s)."""
    env = _django_env(tmp_path_factory.mktemp("django") / "db.sqlite3")
    _setup_database(env)
    server = ServerProcess(["-b", "127.0.0.1:0", "djangoproj.wsgi"], env)
    try:
        server.wait_listening()
        yield server
    finally:
        server.stop()


def _csrf_token(html: str) -> str:
    match = _CSRF_INPUT.search(html)
    assert match, f"no csrfmiddlewaretoken in the form:\n{html[:2000]}"
    return match.group(1)


def _login(http: requests.Session, base: str, password: str) -> requests.Response:
    """GET the login form, then POST it back like a browser would (token, cookie, Referer)."""
    login_url = base + "/admin/login/?next=/admin/"
    form = http.get(login_url)
    assert form.status_code == 200
    assert "csrftoken" in http.cookies
    data = {
        "csrfmiddlewaretoken": _csrf_token(form.text),
        "username": USERNAME,
        "password": password,
        "next": "/admin/",
    }
    return http.post(login_url, data=data, headers={"Referer": login_url},
                     allow_redirects=False)


# -- the admin -------------------------------------------------------------------------------
def test_admin_login_flow(django_server: ServerProcess) -> None:
    base = django_server.url
    with requests.Session() as http:
        anonymous = http.get(base + "/admin/", allow_redirects=False)
        assert anonymous.status_code == 302
        assert anonymous.headers["Location"] == "/admin/login/?next=/admin/"

        resp = _login(http, base, PASSWORD)
        assert resp.status_code == 302, resp.text[:2000]
        assert resp.headers["Location"] == "/admin/"
        assert "sessionid" in http.cookies

        home = http.get(base + "/admin/")
        assert home.status_code == 200
        assert "Site administration" in home.text
        assert "Users" in home.text and "Groups" in home.text  # auth models registered
        users = http.get(base + "/admin/auth/user/")
        assert users.status_code == 200 and USERNAME in users.text

        # Log out with a POST (Django 5 refuses GET); the rotated CSRF secret is in the cookie.
        out = http.post(base + "/admin/logout/",
                        data={"csrfmiddlewaretoken": http.cookies["csrftoken"]},
                        headers={"Referer": base + "/admin/"})
        assert out.status_code == 200 and "Logged out" in out.text
        assert http.get(base + "/admin/", allow_redirects=False).status_code == 302


def test_admin_wrong_password_shows_the_error(django_server: ServerProcess) -> None:
    with requests.Session() as http:
        resp = _login(http, django_server.url, "not-the-password")
        assert resp.status_code == 200
        assert "Please enter the correct username and password" in resp.text
        assert "sessionid" not in http.cookies


def test_post_without_csrf_token_is_forbidden(django_server: ServerProcess) -> None:
    login_url = django_server.url + "/admin/login/"
    data = {"username": USERNAME, "password": PASSWORD}
    with requests.Session() as http:
        # No cookie, no token.
        resp = http.post(login_url, data=data, headers={"Referer": login_url})
        assert resp.status_code == 403 and "CSRF verification failed" in resp.text
        # The cookie alone is not enough either.
        http.get(login_url)
        assert "csrftoken" in http.cookies
        resp = http.post(login_url, data=data, headers={"Referer": login_url})
        assert resp.status_code == 403 and "CSRF verification failed" in resp.text


# -- plain views -----------------------------------------------------------------------------
def test_json_view_reads_the_body(django_server: ServerProcess) -> None:
    url = django_server.url + "/api/echo/"
    payload = {"name": "Bj\u00f6rk \u2603", "values": list(range(100))}
    with requests.Session() as http:
        resp = http.post(url, json=payload)
        assert resp.status_code == 200
        data = resp.json()
        assert data["received"] == payload
        assert data["content_type"] == "application/json"
        assert data["length"] == int(resp.request.headers["Content-Length"])
        # A body that spans many socket reads.
        big = {"blob": "x" * 1_000_000}
        assert http.post(url, json=big).json()["received"] == big
        bad = http.post(url, data=b"{not json", headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and bad.json()["raw"] == "{not json"


def test_meta_has_cgi_and_http_keys(django_server: ServerProcess) -> None:
    resp = requests.get(
        django_server.url + "/meta/?a=1&b=%C3%A9",
        headers={"X-Custom-Header": "custom value", "User-Agent": "greenserve-tests/1",
                 "Accept-Language": "de, en;q=0.5"},
    )
    assert resp.status_code == 200
    data = resp.json()
    meta = data["meta"]
    port = str(django_server.port)
    assert meta["REMOTE_ADDR"] == "127.0.0.1" and meta["REMOTE_PORT"].isdigit()
    assert meta["SERVER_NAME"] == "127.0.0.1" and meta["SERVER_PORT"] == port
    assert meta["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert meta["REQUEST_METHOD"] == "GET"
    assert meta["PATH_INFO"] == "/meta/" and meta["SCRIPT_NAME"] == ""
    assert meta["QUERY_STRING"] == "a=1&b=%C3%A9"
    assert meta["HTTP_HOST"] == f"127.0.0.1:{port}"
    assert meta["HTTP_X_CUSTOM_HEADER"] == "custom value"
    assert meta["HTTP_USER_AGENT"] == "greenserve-tests/1"
    assert meta["HTTP_ACCEPT_LANGUAGE"] == "de, en;q=0.5"
    assert meta["wsgi.url_scheme"] == "http"
    assert meta["SERVER_SOFTWARE"].startswith("greenserve/")
    assert "CONTENT_LENGTH" not in meta or meta["CONTENT_LENGTH"] in ("", "0")
    assert data["host"] == f"127.0.0.1:{port}" and data["port"] == port
    assert data["scheme"] == "http" and data["is_secure"] is False
    assert data["absolute_uri"] == f"{django_server.url}/meta/?a=1&b=%C3%A9"
    assert data["get"] == {"a": "1", "b": "\u00e9"}


def test_meta_of_a_post_has_content_headers(django_server: ServerProcess) -> None:
    resp = requests.post(django_server.url + "/meta/", data=b"abc",
                         headers={"Content-Type": "text/plain; charset=utf-8"})
    meta = resp.json()["meta"]
    assert meta["REQUEST_METHOD"] == "POST"
    assert meta["CONTENT_TYPE"] == "text/plain; charset=utf-8" and meta["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in meta and "HTTP_CONTENT_LENGTH" not in meta


def test_forwarded_proto_from_localhost_makes_the_request_secure(
    django_server: ServerProcess,
) -> None:
    """127.0.0.1 is a trusted proxy by default (as in gunicorn): Django sees https."""
    resp = requests.get(django_server.url + "/meta/", headers={"X-Forwarded-Proto": "https"})
    data = resp.json()
    assert data["scheme"] == "https" and data["is_secure"] is True
    assert data["absolute_uri"] == f"https://127.0.0.1:{django_server.port}/meta/"


def test_unicode_path_reaches_the_url_resolver(django_server: ServerProcess) -> None:
    resp = requests.get(django_server.url + "/word/%C3%BCber%20alles/")
    assert resp.json() == {"word": "\u00fcber alles", "path": "/word/\u00fcber alles/"}


def test_host_header_validation(django_server: ServerProcess) -> None:
    client = RawClient(django_server.connect())
    client.send(b"GET /meta/ HTTP/1.1\r\nHost: evil.example\r\n\r\n")
    assert client.response()[0] == 400  # DisallowedHost: ALLOWED_HOSTS is enforced


def test_request_finished_fires_when_the_server_closes_the_response(
    django_server: ServerProcess,
) -> None:
    """Django closes DB connections on ``request_finished``, sent from the response's close():
    on one keep-alive connection, each request sees the previous one finished."""
    url = django_server.url + "/finished/"
    with requests.Session() as http:
        counts = [http.get(url).json()["finished"] for _ in range(4)]
    assert counts == list(range(counts[0], counts[0] + 4))


def test_file_response_goes_through_the_file_wrapper(django_server: ServerProcess) -> None:
    """FileResponse + ``wsgi.file_wrapper``: the full file, and Django's close() still runs."""
    expected = (TESTS / "apps" / "djangoproj" / "views.py").read_bytes()
    with requests.Session() as http:
        before = http.get(django_server.url + "/finished/").json()["finished"]
        resp = http.get(django_server.url + "/source/")
        assert resp.status_code == 200 and resp.content == expected
        assert resp.headers["Content-Length"] == str(len(expected))
        after = http.get(django_server.url + "/finished/").json()["finished"]
    assert after == before + 2  # the /finished/ before and the file response both closed


def test_streaming_response(django_server: ServerProcess) -> None:
    with httpx.Client() as client:
        with client.stream("GET", django_server.url + "/stream/?n=50") as resp:
            assert resp.headers["transfer-encoding"] == "chunked"
            text = "".join(resp.iter_text())
    assert text == "".join(f"part {i}\n" for i in range(50))


def test_view_error_is_a_500_and_the_worker_lives_on(django_server: ServerProcess) -> None:
    with requests.Session() as http:
        pid = http.get(django_server.url + "/meta/").json()["pid"]
        resp = http.get(django_server.url + "/boom/")
        assert resp.status_code == 500 and "Server Error (500)" in resp.text
        assert http.get(django_server.url + "/meta/").json()["pid"] == pid
    assert django_server.proc.poll() is None
