"""Server Hooks settings: gunicorn's callables, set in a config file only.

Each hook is a setting without a command-line flag whose value is a callable (or a
``"module.function"`` string naming one) that takes exactly the number of positional
arguments gunicorn passes it; a wrong arity is a one-line configuration error, found when the
config is loaded, not when the hook first runs. Arity is counted as gunicorn counts it:
every positional parameter, with or without a default; ``*args`` does not count.

``post_request`` may take 2, 3 or 4 arguments: its value is stored as a
:class:`PostRequestHook`, which records the arity and can always be called with four.

When each hook runs, and what ``server``, ``worker``, ``req`` and ``resp`` offer, is
described in ``docs/how-to/hooks.md``; the request-side objects are in ``greenserve.hooks``.
Resolving a dotted path imports that module, in the master, before gevent patches anything.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from .spec import Converter, setting

#: the type of a hook setting's value
Hook = Callable[..., object]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def arity(func: Hook) -> int:
    """The positional parameters of ``func``, counted as gunicorn's ``util.get_arity``.

    Parameters with defaults count, ``*args`` and keyword-only parameters do not; for a bound
    method or a callable object, ``self`` does not either. Raises ValueError when the
    signature cannot be read (some builtins).
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        raise ValueError(f"cannot read the signature of {func!r}") from None
    return sum(1 for p in signature.parameters.values() if p.kind in _POSITIONAL)


def import_object(path: str) -> object:
    """The object a ``"package.module.name"`` (or ``"package.module:name"``) string names."""
    if ":" in path:
        module_name, _, attribute = path.partition(":")
    else:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not an import string (module.function)")
    try:
        obj: object = importlib.import_module(module_name)
    except Exception as exc:  # anything the import raises is a configuration error here
        raise ValueError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    for name in attribute.split("."):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise ValueError(f"cannot load {attribute!r} from {module_name!r}") from None
    return obj


def resolve(value: object) -> Hook:
    """A callable from a config value: the callable itself, or the object a string names."""
    if isinstance(value, str):
        value = import_object(value)
    if not callable(value):
        raise ValueError(f"expected a callable or a 'module.function' string, got {value!r}")
    return value


def _describe(func: Hook) -> str:
    name = getattr(func, "__qualname__", None) or type(func).__name__
    return f"{name}()"


def _plural(n: int) -> str:
    return f"{n} positional argument" + ("" if n == 1 else "s")


def hook(*params: str) -> Converter:
    """A converter for a hook called with ``params``: a callable of exactly that arity."""

    def convert(value: object) -> Hook:
        func = resolve(value)
        got = arity(func)
        if got != len(params):
            raise ValueError(
                f"must be a callable taking exactly {_plural(len(params))} "
                f"({', '.join(params)}), but {_describe(func)} takes {got}"
            )
        return func

    return convert


@dataclass(frozen=True, slots=True)
class PostRequestHook:
    """A ``post_request`` hook and how many of its four arguments it takes (2, 3 or 4).

    Calling it with ``(worker, req, environ, resp)`` passes the first :attr:`arity` of them,
    as gunicorn does; ``func`` is the user's callable.
    """

    func: Hook
    arity: int

    def __call__(self, worker: Any, req: Any, environ: Any, resp: Any) -> object:
        if self.arity == 4:
            return self.func(worker, req, environ, resp)
        if self.arity == 3:
            return self.func(worker, req, environ)
        return self.func(worker, req)

    def __repr__(self) -> str:
        return repr(self.func)

    @classmethod
    def wrap(cls, value: object) -> PostRequestHook:
        """Validate a ``post_request`` value (callable or dotted path) and record its arity."""
        if isinstance(value, PostRequestHook):
            return value
        func = resolve(value)
        got = arity(func)
        if got not in (2, 3, 4):
            raise ValueError(
                "must be a callable taking 2, 3 or 4 positional arguments "
                f"(worker, req[, environ[, resp]]), but {_describe(func)} takes {got}"
            )
        return cls(func, got)


class DefaultHooks:
    """The defaults: each does nothing, except ``ssl_context``, which builds the default."""

    @staticmethod
    def on_starting(server: Any) -> None:
        """Does nothing."""

    @staticmethod
    def on_reload(server: Any) -> None:
        """Does nothing."""

    @staticmethod
    def when_ready(server: Any) -> None:
        """Does nothing."""

    @staticmethod
    def pre_fork(server: Any, worker: Any) -> None:
        """Does nothing."""

    @staticmethod
    def post_fork(server: Any, worker: Any) -> None:
        """Does nothing."""

    @staticmethod
    def post_patch(worker: Any) -> None:
        """Does nothing."""

    @staticmethod
    def post_worker_init(worker: Any) -> None:
        """Does nothing."""

    @staticmethod
    def worker_int(worker: Any) -> None:
        """Does nothing."""

    @staticmethod
    def worker_abort(worker: Any) -> None:
        """Does nothing."""

    @staticmethod
    def pre_exec(server: Any) -> None:
        """Does nothing."""

    @staticmethod
    def pre_request(worker: Any, req: Any) -> None:
        """Does nothing (gunicorn's logs ``METHOD PATH`` at debug level)."""

    @staticmethod
    def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
        """Does nothing."""

    @staticmethod
    def child_exit(server: Any, worker: Any) -> None:
        """Does nothing."""

    @staticmethod
    def worker_exit(server: Any, worker: Any) -> None:
        """Does nothing."""

    @staticmethod
    def nworkers_changed(server: Any, new_value: Any, old_value: Any) -> None:
        """Does nothing."""

    @staticmethod
    def on_exit(server: Any) -> None:
        """Does nothing."""

    @staticmethod
    def ssl_context(config: Any, default_ssl_context_factory: Callable[[], Any]) -> Any:
        """Returns the context greenserve would build anyway."""
        return default_ssl_context_factory()


_DEFAULT_POST_REQUEST = PostRequestHook(DefaultHooks.post_request, 4)


def is_default(value: object) -> bool:
    """Whether a hook setting's value is its default (callers may then skip the work)."""
    func = value.func if isinstance(value, PostRequestHook) else value
    name = getattr(func, "__name__", "")
    return bool(name) and getattr(DefaultHooks, name, None) is func


def _hook(params: str, func: Hook, *, help: str, when: str, gunicorn: bool = True) -> Any:
    names = tuple(p.strip() for p in params.split(","))
    name = getattr(func, "__name__", "")
    default: Hook = func
    convert = hook(*names)
    if name == "post_request":
        default, convert = _DEFAULT_POST_REQUEST, PostRequestHook.wrap
    signature = f"```python\ndef {name}({params}):\n    ...\n```\n\n"
    return setting(
        kind="file", default=default, default_doc="no-op", convert=convert,
        help=f"`{name}({params})`: {help}", desc=signature + when, gunicorn=gunicorn,
    )


@dataclass(frozen=True, kw_only=True)
class HookSettings:
    """Server Hooks."""

    SECTION: ClassVar[str] = "Server Hooks"

    on_starting: Hook = _hook(
        "server", DefaultHooks.on_starting,
        help="called just before the master process is initialised.",
        when="""\
Runs once in the master, after the pidfile is written and before the listening sockets are
bound, the signal handlers installed and any worker forked. `server` is the master (the
arbiter); docs/how-to/hooks.md lists its attributes. As in gunicorn, an exception raised by
a master-side hook is not caught: it stops the master.""",
    )
    on_reload: Hook = _hook(
        "server", DefaultHooks.on_reload,
        help="called to recycle workers during a reload via SIGHUP.",
        when="""\
Runs in the master on `HUP`, after the configuration has been read again and before the new
workers are started (the old ones are stopped once the new ones accept).""",
    )
    when_ready: Hook = _hook(
        "server", DefaultHooks.when_ready,
        help="called just after the server is started.",
        when="""\
Runs once in the master, when the listening sockets are bound, just before the first workers
are forked (so workers are not accepting yet). Also runs in a new master started by `USR2`.""",
    )
    pre_fork: Hook = _hook(
        "server, worker", DefaultHooks.pre_fork,
        help="called just before a worker is forked.",
        when="""\
Runs in the master, once per worker, with the worker object that is about to be forked; its
`pid` is not known yet.""",
    )
    post_fork: Hook = _hook(
        "server, worker", DefaultHooks.post_fork,
        help="called just after a worker has been forked.",
        when="""\
Runs in the new worker process, right after the fork: before gevent patches the process and
before the app is imported (as in gunicorn, where `post_fork` precedes the gevent worker's
patching). Use `post_patch` for code that needs the patched standard library. An exception
means the worker failed to boot.""",
    )
    post_patch: Hook = _hook(
        "worker", DefaultHooks.post_patch, gunicorn=False,
        help="called in each worker right after gevent patching, before the app is imported.",
        when="""\
Runs in each worker process just after `gevent.monkey.patch_all()`, before the app module is
imported: the place to set up libraries that must see the patched `socket`, `ssl` and
`threading` (e.g. `psycogreen.gevent.patch_psycopg()`, gevent-aware DNS or tracing). With
`--preload` the app was already imported by the master, after the master patched; the hook
still runs in each worker at this point. An exception means the worker failed to boot.""",
    )
    post_worker_init: Hook = _hook(
        "worker", DefaultHooks.post_worker_init,
        help="called just after a worker has initialised the application.",
        when="""\
Runs in the worker once the app is loaded, just before the worker starts accepting
connections. An exception means the worker failed to boot.""",
    )
    worker_int: Hook = _hook(
        "worker", DefaultHooks.worker_int,
        help="called just after a worker exited on SIGINT or SIGQUIT.",
        when="""\
Runs in the worker when it receives `INT` or `QUIT` (a fast stop), just before it exits.""",
    )
    worker_abort: Hook = _hook(
        "worker", DefaultHooks.worker_abort,
        help="called when a worker received the SIGABRT signal.",
        when="""\
Runs in the worker when it receives `ABRT`, which the master sends to a worker that missed
its heartbeat for `--timeout` seconds (usually a blocked hub), just before the worker dumps
its greenlets' stacks and exits.""",
    )
    pre_exec: Hook = _hook(
        "server", DefaultHooks.pre_exec,
        help="called just before a new master process is forked.",
        when="""\
Runs on `USR2` in the forked child of the old master, just before it executes the new master
(which inherits the listening sockets).""",
    )
    pre_request: Hook = _hook(
        "worker, req", DefaultHooks.pre_request,
        help="called just before a worker processes the request.",
        when="""\
Runs in the worker, in the request's greenlet, once the request head has been read and
before the app is called. `req` is a `greenserve.hooks.RequestInfo` (`req.method`,
`req.path`, `req.headers`...). As in gunicorn, an exception fails the request: it is logged
with its traceback, the client gets a 500 and the app is not called. gunicorn's default
logs `METHOD PATH` at debug level; greenserve's does nothing (the access log has that).""",
    )
    post_request: Hook = _hook(
        "worker, req, environ, resp", DefaultHooks.post_request,
        help="called after a worker processes the request.",
        when="""\
Runs in the worker, in the request's greenlet, after the response has been sent and the
access-log line written. The callable may take 2, 3 or 4 arguments: `(worker, req)`,
`(worker, req, environ)` or `(worker, req, environ, resp)`; `resp` is a
`greenserve.hooks.ResponseInfo` (`resp.status`, `resp.status_code`, `resp.headers`,
`resp.sent`). As in gunicorn, an exception is logged with its traceback
(`Exception in post_request hook`) and does not affect the connection.""",
    )
    child_exit: Hook = _hook(
        "server, worker", DefaultHooks.child_exit,
        help="called just after a worker has been exited, in the master process.",
        when="""\
Runs in the master after it has reaped a worker process, whatever the reason it exited.""",
    )
    worker_exit: Hook = _hook(
        "server, worker", DefaultHooks.worker_exit,
        help="called just after a worker has been exited, in the worker process.",
        when="""\
Runs in the worker process as it exits, after it has stopped serving. As in gunicorn, an
exception is logged and the worker exits anyway.""",
    )
    nworkers_changed: Hook = _hook(
        "server, new_value, old_value", DefaultHooks.nworkers_changed,
        help="called just after num_workers has been changed.",
        when="""\
Runs in the master whenever it sets its number of workers: at start-up (with `old_value`
`None`), on `TTIN`/`TTOU`, on `HUP` (even when the number is unchanged, as in gunicorn) and
on `WINCH` (to 0).""",
    )
    on_exit: Hook = _hook(
        "server", DefaultHooks.on_exit,
        help="called just before exiting greenserve.",
        when="""\
Runs in the master as its very last step, after the workers have stopped and the pidfile has
been removed.""",
    )
    ssl_context: Hook = _hook(
        "config, default_ssl_context_factory", DefaultHooks.ssl_context,
        help="called when an SSLContext is needed; returns it.",
        when="""\
`config` is the settings object; `default_ssl_context_factory()` returns the context built
from `certfile`, `keyfile`, `cert_reqs`, `ca_certs` and `ciphers`, which the hook may adjust
(e.g. `context.minimum_version = ssl.TLSVersion.TLSv1_3`) and must return. The default
returns it unchanged. greenserve does not terminate TLS yet (the SSL settings are pending),
so the hook is validated but not called yet.""",
    )
