"""``--log-syslog``: gunicorn-style syslog lines, received by a real UDP socket."""

from __future__ import annotations

import socket

import pytest
import requests

from conftest import ServerProcess, datagrams
from greenserve.config.logging import parse_syslog_address


def test_error_and_access_lines_go_to_syslog(serve, udp_receiver: socket.socket) -> None:  # type: ignore[no-untyped-def]
    port = udp_receiver.getsockname()[1]
    server: ServerProcess = serve("--log-syslog", "--log-syslog-to", f"udp://127.0.0.1:{port}",
                                  "--log-syslog-facility", "local3", "-n", "shop:web",
                                  "wsgi_apps:routes")
    assert requests.get(server.url + "/hello", timeout=5).text == "hello"
    lines = datagrams(udp_receiver, '"GET /hello HTTP/1.1" 200')
    # <PRI> = facility * 8 + severity: local3 (19), info (6) -> 158
    assert any(line.startswith("<158>gunicorn.shop.web.error: [") and "Booting worker" in line
               for line in lines), lines
    access = [line for line in lines if "gunicorn.shop.web.access" in line]
    assert access and '"GET /hello HTTP/1.1" 200 5' in access[0]
    assert server.has_logged("Booting worker")  # the error log still goes to stderr too


def test_prefix_and_keeping_access_lines_out(serve, udp_receiver: socket.socket) -> None:  # type: ignore[no-untyped-def]
    port = udp_receiver.getsockname()[1]
    server: ServerProcess = serve("--log-syslog", "--log-syslog-to", f"udp://127.0.0.1:{port}",
                                  "--log-syslog-prefix", "api",
                                  "--disable-redirect-access-to-syslog", "wsgi_apps:routes")
    assert requests.get(server.url + "/hello", timeout=5).text == "hello"
    lines = datagrams(udp_receiver, "access", timeout=2)
    assert any(line.startswith("<14>gunicorn.api.error: [") for line in lines), lines
    assert not any("access" in line for line in lines)


@pytest.mark.parametrize(("value", "parsed"), [
    ("udp://localhost:514", (("localhost", 514), "dgram")),
    ("udp://10.0.0.1", (("10.0.0.1", 514), "dgram")),
    ("tcp://[::1]:1514", (("::1", 1514), "stream")),
    ("unix:///dev/log", ("/dev/log", "dgram")),
    ("unix:///run/log#stream", ("/run/log", "stream")),
])
def test_syslog_addresses(value: str, parsed: object) -> None:
    assert parse_syslog_address(value) == parsed


def test_bad_syslog_settings_are_one_line_errors() -> None:
    from test_cli import greenserve

    result = greenserve("--log-syslog-to", "syslog.example:514", "--check-config",
                        "cfgapp_basic")
    assert result.returncode == 2
    assert "write udp://HOST:PORT, tcp://HOST:PORT or unix://PATH" in result.stderr
    result = greenserve("--log-syslog-facility", "nope", "--check-config", "cfgapp_basic")
    assert result.returncode == 2
    assert "unknown syslog facility 'nope'" in result.stderr


def test_an_unreachable_unix_syslog_is_one_line_at_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from test_cli import greenserve

    missing = tmp_path / "no-such-log"
    result = greenserve("--log-syslog", "--log-syslog-to", f"unix://{missing}", "-b",
                        "127.0.0.1:0", "cfgapp_basic")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"greenserve: error: --log-syslog-to unix://{missing}: [Errno 2] No such file or "
        "directory"]
