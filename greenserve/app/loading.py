"""Finding the application: ``module[:expression]`` as gunicorn spells it.

``expression`` is a name (``app``), a dotted attribute (``api.app``), or a call with literal
arguments only (``create_app("prod", debug=True)``); it is parsed with ``ast`` and never
evaluated. Errors are :class:`AppLoadError` with a one-line message. When the failure is in
the user's own code (the module raised on import, the factory raised), ``user_error`` holds
that exception so the CLI can show its traceback before the line.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from greenserve.config import Config

    from .mount import Mounts

DEFAULT_ATTRIBUTE = "application"


class AppLoadError(Exception):
    """The application could not be loaded; ``str(exc)`` is one line."""

    def __init__(self, message: str, *, user_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.user_error = user_error


@dataclass(frozen=True)
class AppRef:
    """A parsed ``module:expression``."""

    module: str
    attribute: tuple[str, ...]
    #: None when the expression is not a call
    args: tuple[Any, ...] | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    expression: str = DEFAULT_ATTRIBUTE

    @property
    def name(self) -> str:
        """The dotted attribute, e.g. ``create_app``."""
        return ".".join(self.attribute)


def parse_app_uri(uri: str) -> AppRef:
    """Parse ``module[:expression]`` without importing anything."""
    module, sep, expression = uri.strip().partition(":")
    module, expression = module.strip(), expression.strip() if sep else DEFAULT_ATTRIBUTE
    if module.endswith(".py") or "/" in module or os.sep in module:
        dotted = module.removeprefix("./").removesuffix(".py").replace(os.sep, ".")
        dotted = dotted.replace("/", ".")
        raise AppLoadError(
            f"Failed to find application, did you mean '{dotted}:{expression}'?"
        )
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise AppLoadError(f"{module!r} is not a valid module name (in {uri!r}).")
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise AppLoadError(
            f"Failed to parse {expression!r} as an attribute name or function call."
        ) from None
    if isinstance(node, ast.Call):
        return _call_ref(module, expression, node)
    attribute = _dotted(node)
    if attribute is None:
        raise AppLoadError(
            f"Failed to parse {expression!r} as an attribute name or function call."
        )
    return AppRef(module, attribute, expression=expression)


def _dotted(node: ast.expr) -> tuple[str, ...] | None:
    """``a`` or ``a.b.c`` as a tuple of names; None for anything else."""
    if isinstance(node, ast.Name):
        return (node.id,)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else (*base, node.attr)
    return None


def _call_ref(module: str, expression: str, node: ast.Call) -> AppRef:
    attribute = _dotted(node.func)
    if attribute is None:
        raise AppLoadError(f"Function reference must be a simple name: {expression!r}.")
    try:
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ValueError("starred argument")
        args = tuple(ast.literal_eval(arg) for arg in node.args)
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise ValueError("**kwargs")
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise AppLoadError(
            f"Failed to parse arguments as literal values: {expression!r}."
        ) from None
    return AppRef(module, attribute, args, kwargs, expression)


# -- the process environment the app is imported in --------------------------------------------
T = TypeVar("T")
#: the directory greenserve started in (this module is imported before ``--chdir`` applies)
START_CWD = os.getcwd()


def app_directory(cfg: Config) -> str:
    """``--chdir`` as an absolute path: a relative one is taken from where greenserve
    started, as gunicorn does, also after the chdir and on a config reload."""
    return os.path.abspath(os.path.join(START_CWD, cfg.chdir))


def from_start_directory(call: Callable[[], T]) -> T:
    """``call()`` run in :data:`START_CWD`, then back where the process was."""
    here = os.getcwd()
    os.chdir(START_CWD)
    try:
        return call()
    finally:
        os.chdir(here)


def prepare_process(cfg: Config) -> None:
    """Apply ``--chdir``, ``--env`` and the ``sys.path`` settings, as gunicorn does at start.

    Runs before gevent patches, so ``-e GEVENT_...`` variables configure gevent too.
    Raises OSError when the directory cannot be entered.
    """
    os.chdir(app_directory(cfg))
    for item in cfg.raw_env:
        key, _, value = item.partition("=")
        os.environ[key.strip()] = value
    extend_sys_path(cfg)


def extend_sys_path(cfg: Config) -> None:
    """Put ``--pythonpath`` entries, then the app directory (``--chdir``), first on sys.path.

    Like gunicorn, the working directory is importable even when greenserve runs from a
    console script (whose own directory is ``sys.path[0]``).
    """
    wanted = [os.path.abspath(p.strip()) for p in (cfg.pythonpath or "").split(",") if p.strip()]
    wanted.append(app_directory(cfg))
    for path in reversed(wanted):
        if path not in sys.path:
            sys.path.insert(0, path)


# -- import ------------------------------------------------------------------------------------
def check_app_spec(cfg: Config) -> None:
    """Refuse a malformed APP_MODULE (or mounted spec) before forking; workers import later."""
    if cfg.mount:
        from .mount import check_mount_specs

        check_mount_specs(cfg)
        if not cfg.app_uri:
            return
    if cfg.paste:
        return  # checked when loaded (a file, PasteDeploy)
    parse_app_uri(cfg.app_uri or "")


def load_app(cfg: Config) -> Callable[..., Any] | Mounts:
    """Import and return ``cfg.app_uri``'s application, raising :class:`AppLoadError`.

    With ``--mount``, every mounted app (and APP_MODULE at ``/``) as :class:`.mount.Mounts`.
    """
    if cfg.mount:
        from .mount import load_mounts

        return load_mounts(cfg)
    if not (cfg.app_uri or cfg.paste):
        raise AppLoadError("No application module specified.")
    extend_sys_path(cfg)
    if cfg.paste:  # wins over APP_MODULE, as in gunicorn
        from . import paste

        app, label = paste.load(cfg), f"--paste {cfg.paste}"
    else:
        app = import_app(label := cfg.app_uri or "")
    # a wrong --interface fails here, in one line; an uncertain guess is a warning
    detect_interface(app, cfg.interface, label=label)
    return app


def import_app(uri: str) -> Callable[..., Any]:
    """Import ``module``, resolve the expression, call the factory if any; check callable."""
    ref = parse_app_uri(uri)
    app = _resolve(_import(ref.module), ref)
    if ref.args is not None:
        app = _call_factory(app, ref)
    if app is None:
        raise AppLoadError(f"Failed to find application object: {ref.expression!r}.")
    if not callable(app):
        raise AppLoadError(
            f"Application object must be callable: {ref.module}:{ref.expression} is "
            f"{type(app).__name__}."
        )
    result: Callable[..., Any] = app
    return result


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module == missing or module.startswith(missing + "."):
            # The app module (or its package) itself is missing: a usage error, no traceback.
            raise AppLoadError(
                f"Failed to find module {module!r}: No module named {missing!r}."
            ) from None
        raise AppLoadError(_raised(f"Failed to import {module!r}", exc), user_error=exc) from exc
    except Exception as exc:
        raise AppLoadError(_raised(f"Failed to import {module!r}", exc), user_error=exc) from exc


def _raised(what: str, exc: BaseException) -> str:
    """``what: ExcType: first line of the message`` (the traceback is printed separately)."""
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{what}: {type(exc).__name__}" + (f": {first_line}" if first_line else "")


def _resolve(module: ModuleType, ref: AppRef) -> object:
    obj: object = module
    for depth, part in enumerate(ref.attribute, start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            name = ".".join(ref.attribute[:depth])
            raise AppLoadError(f"Failed to find attribute {name!r} in {ref.module!r}.") from None
    return obj


def _call_factory(factory: object, ref: AppRef) -> object:
    assert ref.args is not None
    if not callable(factory):
        raise AppLoadError(f"Application factory {ref.name!r} in {ref.module!r} is not callable.")
    try:
        inspect.signature(factory).bind(*ref.args, **ref.kwargs)
    except TypeError as exc:
        raise AppLoadError(f"Failed to call {ref.expression!r}: {exc}.") from None
    except ValueError:
        pass  # no signature to check (some builtins); the call itself will tell
    try:
        return factory(*ref.args, **ref.kwargs)
    except Exception as exc:
        message = _raised(f"Failed to call {ref.expression!r}", exc)
        raise AppLoadError(message, user_error=exc) from exc


# -- the interface: WSGI, ASGI 3 or ASGI 2 -----------------------------------------------------
_DESCRIBED = {"wsgi": "a WSGI application", "asgi": "an ASGI 3 application",
              "asgi2": "an ASGI 2 (double-callable) application"}
_ARITY = {"asgi2": 1, "wsgi": 2, "asgi": 3}


def detect_interface(app: object, wanted: str = "auto", label: str = "") -> str:
    """``"wsgi"``, ``"asgi"`` (ASGI 3) or ``"asgi2"``, decided once from the app object.

    ``wanted`` is ``--interface``: ``auto`` takes the guess; an explicit value wins over an
    uncertain guess, and raises :class:`AppLoadError` (one line) when the app certainly has
    another shape (an ``async def`` app served as WSGI, a 2-argument callable as ASGI...).
    With a ``label`` (where the app was loaded), an uncertain guess is logged as a warning
    that names the option, so an ASGI app taken for WSGI is not left to a 500's traceback.
    """
    if wanted == "asgi3":
        wanted = "asgi"
    found, why, certain = _guess_interface(app)
    if wanted == "auto" and not certain and label:
        _warn(f"{label}: its signature does not say whether it is WSGI or ASGI ({why}); "
              "serving it as WSGI. Pass --interface asgi (or asgi2) if it is an ASGI app.")
    if wanted in ("auto", found):
        return found
    if certain:
        raise AppLoadError(
            f"--interface {wanted} does not fit the application: it is {_DESCRIBED[found]} "
            f"({why}); use --interface {found} or auto."
        )
    return wanted


def _warn(message: str) -> None:
    """To the error log in a worker; a ``greenserve: warning:`` line before it is set up
    (``--preload`` loads the app in the master, as the command line is read)."""
    import logging  # not at import: logging imports threading, and this module loads
    # before gevent patches (tests/test_patch.py)

    log = logging.getLogger("greenserve.error")
    if log.hasHandlers():
        log.warning("%s", message)
    else:
        from greenserve.config import warn_to_stderr

        warn_to_stderr(message)


def _guess_interface(app: object) -> tuple[str, str, bool]:
    """(interface, why, certain) for ``app``."""
    if getattr(app, "_asgi_single_callable", False):
        return "asgi", "marked _asgi_single_callable", True
    if getattr(app, "_asgi_double_callable", False):
        return "asgi2", "marked _asgi_double_callable", True
    if inspect.isclass(app):
        if _is_coroutine_function(_class_call(app)):
            return "asgi2", "a class with an async __call__", True
        if hasattr(app, "__await__"):
            return "asgi", "an awaitable class", True
    elif _is_coroutine_function(app) or _is_coroutine_function(_class_call(type(app))):
        return "asgi", "async def", True
    fits = [name for name, arity in _ARITY.items() if _accepts(app, arity)]
    if len(fits) == 1:
        return fits[0], f"it takes {_ARITY[fits[0]]} positional argument(s)", True
    if fits:
        counts = [str(_ARITY[name]) for name in fits]
        counts[-2:] = [" or ".join(counts[-2:])]
        return "wsgi", f"it can be called with {', '.join(counts)} positional arguments", False
    return "wsgi", "it takes neither 2 positional arguments, as WSGI, nor 3, as ASGI", False


def _class_call(cls: type) -> object:
    """``cls.__call__`` as defined by the class (not ``type.__call__`` of a metaclass)."""
    for klass in cls.__mro__:
        if "__call__" in vars(klass):
            return vars(klass)["__call__"]
    return None


def _is_coroutine_function(func: object) -> bool:
    if func is None:
        return False
    if inspect.iscoroutinefunction(func):
        return True
    # asgiref's markcoroutinefunction() on Python < 3.12 marks sync callables this way.
    marker = getattr(sys.modules.get("asyncio.coroutines"), "_is_coroutine", None)
    return marker is not None and getattr(func, "_is_coroutine", None) is marker


def _accepts(app: object, count: int) -> bool:
    """Whether ``app`` can be called with ``count`` positional arguments."""
    try:
        inspect.signature(app).bind(*([None] * count))  # type: ignore[arg-type]
    except TypeError:
        return False
    except ValueError:
        return True  # no signature (a builtin): cannot tell
    return True
