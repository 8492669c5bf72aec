"""A template locustfile for ``greenserve bench -f`` (or plain ``locust -f``).

Copy it and change :class:`SiteUser`. As it is, it does what ``greenserve bench`` does
without ``-f`` (GET the ``--paths`` by weight, 2xx/3xx or a failure) and also requires a
non-empty body::

    greenserve bench --app loadtests.bench_app:app -f loadtests/locustfile.py --paths /hello
    locust -f loadtests/locustfile.py --headless -u 10 -t 20s -H http://127.0.0.1:8000

Import the built-in *module*, not its class: Locust runs every ``User`` class at the top
level of this file, so ``from greenserve.bench.locustfile import PathsUser`` would run the
built-in user next to this one.
"""

from __future__ import annotations

from locust.contrib.fasthttp import ResponseContextManager

from greenserve.bench import locustfile as builtin


class SiteUser(builtin.PathsUser):
    """The built-in user with one more check; add ``@task`` methods for other requests."""

    def check(self, response: ResponseContextManager) -> str | None:
        problem = super().check(response)
        if problem is None and not response.content:
            return "empty body"
        return problem
