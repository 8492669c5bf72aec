"""The built-in Locust user of ``greenserve bench``: GET some paths by weight, check the status.

Run by Locust, never imported by greenserve itself (it imports ``locust``, which
monkey-patches the process with gevent). Use it from your own locustfile::

    from greenserve.bench import locustfile as builtin

    class MyUser(builtin.PathsUser):
        ...

Import the *module*, not the class: Locust runs every ``User`` class it finds at the top
level of a locustfile, so ``from ... import PathsUser`` would run it next to yours.

The paths come from ``--paths /,/hello:3`` (a comma-separated list, each path with an
optional ``:WEIGHT``), an option this module adds to Locust's command line.
"""

from __future__ import annotations

import random
from typing import Any

from locust import FastHttpUser, events, task
from locust.contrib.fasthttp import ResponseContextManager

from greenserve.bench.options import UsageError, parse_paths


def _add_paths_option(parser: Any, **_kwargs: Any) -> None:
    parser.add_argument("--paths", default="/", help="comma-separated PATH[:WEIGHT] to GET")


events.init_command_line_parser.add_listener(_add_paths_option)  # type: ignore[no-untyped-call]


class PathsUser(FastHttpUser):
    """One connection per user, GETs in a closed loop (no wait), one path chosen per request.

    A response counts as a success when :meth:`check` says so; by default any 2xx or 3xx.
    """

    paths: list[str] = ["/"]
    weights: list[int] = [1]

    def on_start(self) -> None:
        text = getattr(self.environment.parsed_options, "paths", None) or "/"
        try:
            pairs = parse_paths(text)
        except UsageError as exc:
            raise SystemExit(f"locustfile: {exc}") from None
        self.paths = [path for path, _ in pairs]
        self.weights = [weight for _, weight in pairs]

    @task
    def get_path(self) -> None:
        """GET one of the paths, chosen at random in proportion to its weight."""
        path = random.choices(self.paths, self.weights)[0]
        with self.client.get(path, name=path, catch_response=True) as response:
            problem = self.check(response)
            if problem:
                response.failure(problem)
            else:
                response.success()

    def check(self, response: ResponseContextManager) -> str | None:
        """Why ``response`` is a failure, or None when it is fine. Override to check more."""
        status = response.status_code or 0
        if not 200 <= status < 400:
            error = getattr(response, "error", None)
            return f"HTTP {status}" if status else f"no response: {error}"
        return None
