"""Security settings: request size limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import at_least, checked, setting, to_int, zero_means

MAX_REQUEST_LINE = 8190
MAX_HEADERS = 32768


@dataclass(frozen=True, kw_only=True)
class SecuritySettings:
    """Security."""

    SECTION: ClassVar[str] = "Security"

    limit_request_line: int = setting(
        "--limit-request-line", metavar="INT", default=4094, maximum=MAX_REQUEST_LINE,
        convert=checked(to_int, at_least(0)),
        help="The maximum size of the request line in bytes (0 = unlimited).",
        desc="""\
The request line is the method, target and version (`GET /path?query HTTP/1.1`). A longer
line is answered with 414. 0 means no limit; values above 8190 are clamped to 8190.""",
    )
    limit_request_fields: int = setting(
        "--limit-request-fields", metavar="INT", default=100, maximum=MAX_HEADERS,
        convert=checked(zero_means(MAX_HEADERS), at_least(0)),
        help="The maximum number of header fields in a request.",
        desc="""\
More header fields (trailers included) are answered with 431. The maximum, also used for 0,
is 32768; larger values are clamped.""",
    )
    limit_request_field_size: int = setting(
        "--limit-request-field_size", metavar="INT", default=8190,
        convert=checked(to_int, at_least(0)),
        help="The maximum size of one header field in bytes (0 = unlimited).",
        desc="""\
A larger header field (name, colon and value) is answered with 431. 0 means no limit.
The flag really is spelled with an underscore, as in gunicorn.""",
    )
