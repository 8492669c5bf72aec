"""Settings that gunicorn does not have."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import at_least, checked, setting, to_float, to_opt_str


@dataclass(frozen=True, kw_only=True)
class GreenserveSettings:
    """greenserve only."""

    SECTION: ClassVar[str] = "greenserve"

    app_uri: str | None = setting(
        kind="positional", metavar="APP_MODULE", default=None, convert=to_opt_str,
        aliases=("wsgi_app",), gunicorn=False,
        help="The application: MODULE[:EXPRESSION].",
        desc="""\
`module:name` names a callable in a module (dotted packages allowed); `module` alone means
`module:application`; `module:factory()` or `module:factory("x", debug=True)` calls a factory
with literal arguments. In a config file it is spelled `wsgi_app`, as in gunicorn.""",
    )
    header_timeout: float = setting(
        "--header-timeout", metavar="SECONDS", default=10.0,
        convert=checked(to_float, at_least(0)), gunicorn=False,
        help="Seconds allowed to receive a complete request head (0 = no limit).",
        desc="""\
The time from the first byte of a request to the end of its headers. A slower client gets
408 and the connection is closed, which bounds slowloris-style attacks. 0 disables it.""",
    )
