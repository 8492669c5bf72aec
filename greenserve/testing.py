"""pytest support for apps served by greenserve.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["greenserve.testing"]``, then::

    def test_home(greenserve_server):
        server = greenserve_server("myproject.wsgi:application")   # a real child process
        assert requests.get(server.url + "/").status_code == 200

Each server binds port 0 and is stopped (gracefully) when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .embed import App, Server

ServerFactory = Callable[..., Server]


@pytest.fixture
def greenserve_server() -> Iterator[ServerFactory]:
    """Factory fixture: ``greenserve_server(app, **settings) -> Server`` (already started)."""
    servers: list[Server] = []

    def start(app: str | App, **settings: Any) -> Server:
        server = Server(app, **settings)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
