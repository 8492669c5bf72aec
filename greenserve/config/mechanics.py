"""Server Mechanics settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import (
    at_least,
    checked,
    each,
    ip_or_network,
    key_value,
    setting,
    to_bool,
    to_comma_tuple,
    to_mode,
    to_opt_str,
    to_str,
    to_str_tuple,
)


def _sendfile(value: object) -> bool:
    # gunicorn's default is None, meaning "use $SENDFILE, else enabled"; resolved here.
    return True if value is None else to_bool(value)


def _root_path(value: object) -> str:
    path = to_str(value)
    if path and not path.startswith("/"):
        raise ValueError(f"must be empty or start with '/', got {path!r}")
    return path.rstrip("/")


def _upper_comma_tuple(value: object) -> tuple[str, ...]:
    return tuple(item.upper() for item in to_comma_tuple(value))


def _scheme_headers(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError("expected a dict of header name -> value strings")
    return {name.upper(): text for name, text in value.items()}


def _proxy_mode(value: object) -> str:
    # gunicorn before 24.1 had a boolean: True is what "auto" is now.
    if value is True:
        return "auto"
    if value is False or value is None:
        return "off"
    return to_str(value).strip().lower()


@dataclass(frozen=True, kw_only=True)
class MechanicsSettings:
    """Server Mechanics."""

    SECTION: ClassVar[str] = "Server Mechanics"

    daemon: bool = setting(
        "-D", "--daemon", kind="switch", default=False, convert=to_bool,
        help="Detach the server from the terminal (double fork).",
        desc="""\
The master forks into the background, starts a new session and points stdin, stdout and
stderr at /dev/null (unless `--enable-stdio-inheritance`). Use `--pid` to find it later.""",
    )
    pidfile: str | None = setting(
        "-p", "--pid", metavar="FILE", default=None, convert=to_opt_str,
        help="A filename to write the master's PID to.",
        desc="""\
Written when the master starts and removed when it exits. On `USR2` the old master renames
its file to `FILE.oldbin` and the new master writes `FILE`.""",
    )
    user: str | None = setting(
        "-u", "--user", metavar="USER", default=None, default_doc="os.geteuid()",
        convert=to_opt_str,
        help="Switch worker processes to run as this user (name or uid).",
        desc="""\
The master keeps its user (it must bind privileged ports and re-exec); each worker switches
to this user right after it forks, before the app is imported.""",
    )
    group: str | None = setting(
        "-g", "--group", metavar="GROUP", default=None, default_doc="os.getegid()",
        convert=to_opt_str,
        help="Switch worker processes to run as this group (name or gid).",
        desc="""\
Like `--user`, for the group.""",
    )
    umask: int = setting(
        "-m", "--umask", metavar="INT", default=0, convert=checked(to_mode, at_least(0)),
        help="A bit mask for the file mode on files written by greenserve.",
        desc="""\
Any value `int(value, 0)` accepts (`0o022`, `0x12`, `18`), and, as in gunicorn, a number
with a leading zero is octal (`0022` is 18). Applied in the master, so it also sets the mode
of unix sockets it creates, and inherited by the workers.""",
    )
    initgroups: bool = setting(
        "--initgroups", kind="switch", default=False, convert=to_bool,
        help="Set the workers' supplementary groups to those of --user.",
        desc="""\
Calls `os.initgroups()` for the worker user before switching to it.""",
    )
    preload_app: bool = setting(
        "--preload", kind="switch", default=False, convert=to_bool,
        help="Load the application before forking workers.",
        desc="""\
Loads the app once in the master, which saves memory and start-up time but means a code
reload needs a full restart. greenserve patches with gevent before this import, so a preloaded
app sees patched modules (unlike `gunicorn -k gevent --preload`).""",
    )
    sendfile: bool = setting(
        "--no-sendfile", kind="const", const=False, default=True,
        default_doc="None (→ $SENDFILE env, else enabled)", env="SENDFILE",
        convert=_sendfile,
        help="Disable os.sendfile() for wsgi.file_wrapper responses.",
        desc="""\
By default `wsgi.file_wrapper` responses over plain TCP use `os.sendfile()`. Without the flag,
the `SENDFILE` environment variable decides (`0`, `false`, `no` disable it).""",
    )
    reuse_port: bool = setting(
        "--reuse-port", kind="switch", default=False, convert=to_bool,
        help="Set SO_REUSEPORT on the listening sockets.",
        desc="Lets several processes bind the same address; the kernel balances between them.",
    )
    chdir: str = setting(
        "--chdir", metavar="VALUE", default=".", default_doc="current working dir",
        convert=to_str,
        help="Change to this directory before loading the app.",
        desc="""\
The directory is also put first on `sys.path`, so the app module is found there. A relative
path is taken from the directory greenserve was started in (as gunicorn does), also when the
settings are read again on `SIGHUP`.""",
    )
    raw_env: tuple[str, ...] = setting(
        "-e", "--env", kind="append", metavar="ENV", default=(),
        convert=checked(to_str_tuple, each(key_value)),
        help="Set an environment variable (KEY=VALUE); repeatable.",
        desc="""\
Applied before gevent patches and before the app is imported, so it can also configure gevent
itself (e.g. `-e GEVENT_RESOLVER=ares`).""",
    )
    forwarded_allow_ips: tuple[str, ...] = setting(
        "--forwarded-allow-ips", metavar="STRING", default=("127.0.0.1", "::1"),
        default_doc="$FORWARDED_ALLOW_IPS or '127.0.0.1,::1'", env="FORWARDED_ALLOW_IPS",
        convert=checked(to_comma_tuple, each(ip_or_network)),
        help="Front-end IPs trusted to set the secure-scheme headers (comma list, CIDR, '*').",
        desc="""\
A comma-separated list of IP addresses or networks (CIDR) whose `X-Forwarded-Proto`-style
headers are believed; `*` trusts every peer. Unix-socket peers are always trusted. The
default comes from the `FORWARDED_ALLOW_IPS` environment variable when it is set.""",
    )
    worker_tmp_dir: str | None = setting(
        "--worker-tmp-dir", metavar="DIR", default=None, convert=to_opt_str,
        help="Accepted for gunicorn compatibility: the heartbeat lives in shared memory.",
        desc="""\
gunicorn keeps each worker's heartbeat in a temporary file there (and `/dev/shm` is the usual
advice, against disk stalls). greenserve's heartbeat is a shared memory map, so nothing is
written and the setting has no effect.""",
    )
    tmp_upload_dir: str | None = setting(
        kind="file", default=None, convert=to_opt_str,
        help="Accepted for gunicorn compatibility; unused (as in gunicorn).",
        desc="gunicorn documents it as unused and likely to go; greenserve does not use it.",
    )
    secure_scheme_headers: dict[str, str] | None = setting(
        kind="file", default=None, convert=_scheme_headers,
        default_doc="{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', "
                    "'X-FORWARDED-SSL': 'on'}",
        help="Headers (and values) a trusted front end sets to say the client used https.",
        desc="""\
A dict in the config file, as in gunicorn. Believed only from `--forwarded-allow-ips` peers:
a header in it carrying the mapped value makes the request `https` (`wsgi.url_scheme`, the
ASGI `scheme`), any other value makes it `http`, and two that disagree get 400
`Contradictory scheme headers`. Names and values compare case-insensitively. `{}` believes
no header.""",
    )
    paste: str | None = setting(
        "--paste", "--paster", metavar="STRING", default=None, convert=to_opt_str,
        help="Load the app from a PasteDeploy ini file (FILE[#name], or a config:/egg: URI).",
        desc="""\
As gunicorn: the app of the file's `[app:main]` section (or `FILE#name`), instead of
APP_MODULE; a `[loggers]` section configures logging too, unless `--log-config` or the like
is given. Needs the PasteDeploy package (`pip install greenserve[paste]`).""",
    )
    raw_paste_global_conf: tuple[str, ...] = setting(
        "--paste-global", kind="append", metavar="CONF", default=(), default_doc="[]",
        convert=checked(to_str_tuple, each(key_value)),
        help="A KEY=VALUE for the PasteDeploy global configuration (repeatable).",
        desc="What `%(KEY)s` in the ini file and the app factory's global_conf see.",
    )
    forwarder_headers: tuple[str, ...] = setting(
        "--forwarder-headers", metavar="VALUE", default=("SCRIPT_NAME", "PATH_INFO"),
        default_doc="'SCRIPT_NAME,PATH_INFO'", convert=_upper_comma_tuple,
        help="Header names with '_' a trusted front end may send (comma list; '*' for all).",
        desc="""\
Header names with `_` are dropped (see `--header-map`) because they could pass for names with
`-`; from a `--forwarded-allow-ips` peer the ones listed here get through as `HTTP_...`. As in
gunicorn, a `SCRIPT_NAME` header then mounts the app under that prefix for the request
(`SCRIPT_NAME` set, the prefix cut from `PATH_INFO`); a path that does not start with it is
answered 500. `''` lets none through.""",
    )
    proxy_protocol: str = setting(
        "--proxy-protocol", kind="optional", metavar="MODE", const="auto", default="off",
        choices=("off", "v1", "v2", "auto"), convert=_proxy_mode,
        help="Read a PROXY protocol header (v1, v2 or either) at the start of connections.",
        desc="""\
For load balancers that send one (HAProxy `send-proxy`/`send-proxy-v2`, AWS NLB with proxy
protocol): the client address in it becomes the request's (`REMOTE_ADDR`, the ASGI
`client`, the access log's `%(h)s`). `auto` (the flag without a value) takes v1 or v2; the
header is optional, so health checks that send plain HTTP still work. Only peers in
`--proxy-allow-from` may send one (others get 403); a malformed header gets 400. Not with
`--certfile` (the header would come before the TLS handshake). A config file's `True` means
`auto`, as older gunicorn versions wrote it.""",
    )
    proxy_allow_ips: tuple[str, ...] = setting(
        "--proxy-allow-from", metavar="VALUE", default=("127.0.0.1", "::1"),
        default_doc="'127.0.0.1,::1'", convert=checked(to_comma_tuple, each(ip_or_network)),
        help="Peers allowed to send a PROXY header (comma list, CIDR, '*').",
        desc="""\
The balancers' addresses or networks; `*` allows every peer. Forwarded headers
(`--forwarded-allow-ips`) are still judged by the balancer's address, not the client's.""",
    )
    protocol: str = setting(
        "--protocol", metavar="STRING", default="http", choices=("http", "uwsgi"),
        convert=to_str,
        help="The protocol the listeners speak: http, or uwsgi (behind nginx's uwsgi_pass).",
        desc="""\
`uwsgi` reads the binary uwsgi protocol that nginx's `uwsgi_pass` (and other uWSGI front
ends) send, instead of HTTP; WSGI and ASGI apps are served alike. The request comes from the
packet's variables (`REQUEST_METHOD`, `REQUEST_URI` or `PATH_INFO` and `QUERY_STRING`,
`HTTP_*` as headers, `CONTENT_LENGTH` for the body, `HTTPS` for the scheme); responses go
back as HTTP/1.1, never chunked (one without a Content-Length ends with the connection).
Only `modifier1` 0 is served (others get 501), and only peers in `--uwsgi-allow-from`
(others get 403). No WebSocket over uwsgi.""",
    )
    uwsgi_allow_ips: tuple[str, ...] = setting(
        "--uwsgi-allow-from", metavar="VALUE", default=("127.0.0.1", "::1"),
        default_doc="'127.0.0.1,::1'", convert=checked(to_comma_tuple, each(ip_or_network)),
        help="Peers allowed to send uwsgi requests (comma list, CIDR, '*').",
        desc="""\
With `--protocol uwsgi`: the front ends' addresses or networks; `*` allows every peer.
Unix-socket peers are always allowed. Others are answered 403 and disconnected.""",
    )
    pythonpath: str | None = setting(
        "--pythonpath", metavar="STRING", default=None, convert=to_opt_str,
        help="Comma-separated directories to prepend to sys.path.",
        desc="Each directory is made absolute and put at the front of `sys.path`, in order.",
    )
    permit_obsolete_folding: bool = setting(
        "--permit-obsolete-folding", kind="switch", default=False, convert=to_bool,
        help="Accept obsolete line folding (obs-fold) in request headers.",
        desc="""\
RFC 9112 lets servers reject header values continued on a following line; greenserve
answers 400 unless this is set, in which case the lines are joined with a space.""",
    )
    strip_header_spaces: bool = setting(
        "--strip-header-spaces", kind="switch", default=False, convert=to_bool,
        help="Strip spaces between a header name and the colon (unsafe).",
        desc="""\
`Name : value` is rejected with 400 by default. Accepting it is a known request-smuggling
vector; use it only behind a proxy that normalises headers.""",
    )
    permit_unconventional_http_method: bool = setting(
        "--permit-unconventional-http-method", kind="switch", default=False, convert=to_bool,
        help="Allow methods shorter than 3 or longer than 20 characters, or with lower case.",
        desc="""\
By default a method must be a token of 3 to 20 characters without lower case or `#`
(gunicorn's rule); anything else is answered with 400. This switch relaxes that to any token.""",
    )
    permit_unconventional_http_version: bool = setting(
        "--permit-unconventional-http-version", kind="switch", default=False,
        convert=to_bool,
        help="Accept HTTP versions other than 1.x (0.x, 2.x-9.x), served as HTTP/1.",
        desc="""\
A request line's version must be `HTTP/` and two single digits. HTTP/1.0 and 1.1 are served
as they are, and a later 1.x as 1.1 (RFC 9112 2.6; gunicorn accepts 1.0-1.9 too); any other
major version is answered with 505 unless this is set. Then 0.x is served as HTTP/1.0 and
2.x-9.x as HTTP/1.1: the app sees that version (`SERVER_PROTOCOL`, the scope's
`http_version`), and the response's status line says HTTP/1.1, as for every request
(gunicorn echoes the request's version there).""",
    )
    casefold_http_method: bool = setting(
        "--casefold-http-method", kind="switch", default=False, convert=to_bool,
        help="Upper-case request methods before the app sees them (pre-22.0 gunicorn).",
        desc="""\
`get` becomes `GET`. Only useful with `--permit-unconventional-http-method`.""",
    )
    header_map: str = setting(
        "--header-map", metavar="VALUE", default="drop",
        choices=("drop", "refuse", "dangerous"), convert=to_str,
        help="What to do with header names containing '_': drop, refuse or dangerous.",
        desc="""\
In the WSGI environ `X-Forwarded_For` and `X-Forwarded-For` collide. `drop` silently
drops headers with an underscore, `refuse` answers 400, `dangerous` passes them through
(the collision is then resolved arbitrarily).""",
    )
    root_path: str = setting(
        "--root-path", metavar="STRING", default="", convert=_root_path,
        help="The mount path of an ASGI application (its scopes' root_path).",
        desc="""\
Set when the app is served under a URL prefix by a proxy that does not pass the prefix on,
e.g. `/api`. A trailing slash is removed. As in gunicorn it is for ASGI apps: a WSGI app
takes its prefix from the `SCRIPT_NAME` environment variable (`-e SCRIPT_NAME=/api`).""",
    )
