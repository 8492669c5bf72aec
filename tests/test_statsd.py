"""``--statsd-host``: gunicorn's StatsD metrics, received by a real UDP socket."""

from __future__ import annotations

import logging
import socket

import pytest
import requests

from conftest import ServerProcess, datagrams
from greenserve.config.logging import parse_statsd_address
from greenserve.metrics import MetricsHandler, StatsD


def _address(sock: socket.socket) -> str:
    return "127.0.0.1:%d" % sock.getsockname()[1]


def test_wsgi_requests_workers_and_errors(serve, udp_receiver: socket.socket) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("--statsd-host", _address(udp_receiver), "--statsd-prefix",
                                  "myapp..", "--dogstatsd-tags", "env:test,team:web",
                                  "wsgi_apps:routes")
    assert requests.get(server.url + "/hello", timeout=5).status_code == 200
    assert requests.get(server.url + "/missing", timeout=5).status_code == 404
    assert requests.get(server.url + "/error-before", timeout=5).status_code == 500
    lines = datagrams(udp_receiver, "gunicorn.request.status.500")
    tags = "|#env:test,team:web"
    assert f"myapp.gunicorn.workers:1|g{tags}" in lines  # the master, at start
    assert lines.count(f"myapp.gunicorn.requests:1|c|@1.0{tags}") >= 3
    assert f"myapp.gunicorn.request.status.200:1|c|@1.0{tags}" in lines
    assert f"myapp.gunicorn.request.status.404:1|c|@1.0{tags}" in lines
    assert f"myapp.gunicorn.request.status.500:1|c|@1.0{tags}" in lines
    durations = [line for line in lines if line.startswith("myapp.gunicorn.request.duration:")]
    assert len(durations) >= 3
    assert all(line.endswith(f"|ms{tags}") for line in durations)
    assert 0 <= float(durations[0].split(":")[1].split("|")[0]) < 5000
    assert f"myapp.gunicorn.log.exception:1|c|@1.0{tags}" in lines  # the app's traceback


def test_asgi_requests_and_the_backlog(serve, udp_receiver: socket.socket) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("--statsd-host", _address(udp_receiver),
                                  "--enable-backlog-metric", "asgi_apps:app")
    assert requests.get(server.url + "/where", timeout=5).status_code == 200
    lines = datagrams(udp_receiver, "gunicorn.request.status.200")
    assert "gunicorn.requests:1|c|@1.0" in lines
    assert "gunicorn.request.status.200:1|c|@1.0" in lines
    lines += datagrams(udp_receiver, "gunicorn.backlog", timeout=5)
    assert "gunicorn.backlog:0|ms" in lines  # the master, about once a second


def test_an_unreachable_statsd_does_not_fail_requests(serve) -> None:  # type: ignore[no-untyped-def]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        address = _address(closed)
    server: ServerProcess = serve("--statsd-host", address, "wsgi_apps:routes")
    for _ in range(5):
        assert requests.get(server.url + "/hello", timeout=5).text == "hello"
    assert server.has_logged("Error sending message to statsd")
    assert server.logs().count("Error sending message to statsd") == 1  # once a minute


@pytest.mark.parametrize(("value", "address"), [
    ("localhost", ("localhost", 8125)),
    ("10.0.0.1:9125", ("10.0.0.1", 9125)),
    ("[::1]:9125", ("::1", 9125)),
    ("unix:/run/statsd.sock", "/run/statsd.sock"),
    ("unix:///run/statsd.sock", "/run/statsd.sock"),
])
def test_statsd_addresses(value: str, address: object) -> None:
    assert parse_statsd_address(value) == address


@pytest.mark.parametrize("value", ["host:port", "unix:", "[::1]x", ":8125"])
def test_bad_statsd_addresses(value: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT|unix socket path"):
        parse_statsd_address(value)


def test_hook_metrics_from_log_extras(udp_receiver: socket.socket) -> None:
    client = StatsD(("127.0.0.1", udp_receiver.getsockname()[1]), "p")
    logger = logging.getLogger("test.statsd.extras")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(MetricsHandler(client))
    logger.info("queue", extra={"metric": "myapp.queue", "value": 0, "mtype": "gauge"})
    logger.info("hit", extra={"metric": "myapp.hits", "value": 2, "mtype": "counter"})
    logger.warning("careful")
    lines = datagrams(udp_receiver, "gunicorn.log.warning", timeout=5)
    assert lines == ["p.myapp.queue:0|g", "p.myapp.hits:2|c|@1.0",
                     "p.gunicorn.log.warning:1|c|@1.0"]
