"""The shape of one setting declaration, its converters, and the table of pending gunicorn flags.

A setting is a dataclass field whose metadata holds a :class:`Spec`. Everything else (argparse,
the environment, the config file, ``--print-config`` and the docs) is derived from these specs,
so a setting is written down exactly once.

Converters take the raw value from any source (a string from the command line or the
environment, a Python object from a config file) and return the typed value, raising
``ValueError`` with a short message on bad input. This module imports nothing that may open
sockets or start threads: it runs before gevent patches the process.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")

#: ``value``: takes one argument; ``append``: repeatable, collected in order; ``switch``: a
#: store_true flag; ``const``: stores :attr:`Spec.const` (``--no-sendfile``); ``optional``: the
#: argument may be omitted and then :attr:`Spec.const` is used; ``positional``: APP_MODULE;
#: ``file``: no command-line flag, set in a config file only (the server hooks).
Kind = Literal["value", "append", "switch", "const", "optional", "positional", "file"]
Converter = Callable[[object], Any]

SPEC_KEY = "greenserve.spec"


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Everything known about one setting except its name, type and default (the field's)."""

    flags: tuple[str, ...]
    kind: Kind
    convert: Converter
    help: str
    desc: str = ""
    metavar: str | None = None
    const: object = None
    choices: tuple[str, ...] = ()
    #: an environment variable that supplies the default (gunicorn's ``WEB_CONCURRENCY``...)
    env: str | None = None
    #: turns that variable's text into a raw value for :attr:`convert` (``PORT`` → a bind)
    env_map: Callable[[str], object] | None = None
    #: values above this are clamped, with a warning, as gunicorn clamps them silently
    maximum: int | None = None
    #: returns a warning for an accepted but questionable final value
    advise: Callable[[Any], str | None] | None = None
    #: the default as the docs show it when the code's default is computed
    default_doc: str | None = None
    #: other names accepted for this setting in a config file (gunicorn's ``wsgi_app``)
    aliases: tuple[str, ...] = ()
    #: False for greenserve-only settings
    gunicorn: bool = True
    since: str = "0.1.0"
    #: why greenserve's default or behaviour differs from gunicorn's, when it does
    deviation: str = ""


def setting(
    *flags: str,
    default: T,
    help: str,
    convert: Converter,
    kind: Kind = "value",
    desc: str = "",
    metavar: str | None = None,
    const: object = None,
    choices: tuple[str, ...] = (),
    env: str | None = None,
    env_map: Callable[[str], object] | None = None,
    maximum: int | None = None,
    advise: Callable[[Any], str | None] | None = None,
    default_doc: str | None = None,
    aliases: tuple[str, ...] = (),
    gunicorn: bool = True,
    since: str = "0.1.0",
    deviation: str = "",
) -> T:
    """Declare a setting as a dataclass field; typed as its default so mypy sees ``T``."""
    spec = Spec(
        flags=flags, kind=kind, convert=convert, help=help, desc=desc, metavar=metavar,
        const=const, choices=choices, env=env, env_map=env_map, maximum=maximum, advise=advise,
        default_doc=default_doc, aliases=aliases, gunicorn=gunicorn, since=since,
        deviation=deviation,
    )
    # dataclasses.field() is typed to return the default's type, which is what we want here.
    result: T = dataclasses.field(default=default, metadata={SPEC_KEY: spec})
    return result


def spec_of(f: dataclasses.Field[Any]) -> Spec | None:
    """The :class:`Spec` attached to a dataclass field, if it is a setting."""
    spec = f.metadata.get(SPEC_KEY)
    return spec if isinstance(spec, Spec) else None


# -- converters --------------------------------------------------------------------------------
_TRUE = frozenset({"1", "true", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "no", "n", "off", ""})


def to_int(value: object) -> int:
    """An integer; strings may use ``0x``/``0o``/``0b`` prefixes as gunicorn's ``int(v, 0)``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"invalid int value: {value!r}")
    if isinstance(value, int):
        return value
    text = value.strip()
    for base in (10, 0):  # base 10 first so that "010" is ten, as argparse's int() reads it
        try:
            return int(text, base)
        except ValueError:
            continue
    raise ValueError(f"invalid int value: {value!r}")


def to_mode(value: object) -> int:
    """A file mode or umask: as :func:`to_int`, but a number with a leading zero is octal
    (``"0022"``, ``"0600"``: the way modes are written, and gunicorn reads them)."""
    text = str(value).strip()
    if len(text) > 1 and text.startswith("0") and text.isdigit():
        return int(text, 8)
    return to_int(value)


def to_float(value: object) -> float:
    """A float (an int is accepted too)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid float value: {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"invalid float value: {value!r}") from None


def to_bool(value: object) -> bool:
    """A boolean; strings such as ``1``/``yes``/``true`` and ``0``/``no``/``false``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"invalid boolean value: {value!r}")


def to_str(value: object) -> str:
    """A string."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def to_opt_str(value: object) -> str | None:
    """A string or None."""
    return None if value is None else to_str(value)


def to_str_tuple(value: object) -> tuple[str, ...]:
    """A list of strings; a single string becomes a one-item list."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected a list of strings, got {value!r}")


def to_comma_tuple(value: object) -> tuple[str, ...]:
    """A comma-separated string (or a list) of items, blanks dropped."""
    items = value.split(",") if isinstance(value, str) else to_str_tuple(value)
    return tuple(item.strip() for item in items if item.strip())


# -- validators, composed onto a converter -----------------------------------------------------
Check = Callable[[Any], None]


def checked(convert: Converter, *checks: Check) -> Converter:
    """``convert`` followed by each check (a check raises ValueError to reject)."""

    def run(value: object) -> Any:
        result = convert(value)
        for check in checks:
            check(result)
        return result

    return run


def at_least(minimum: int | float) -> Check:
    """Reject numbers below ``minimum``."""

    def check(value: int | float) -> None:
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")

    return check


def each(check: Callable[[str], None]) -> Check:
    """Apply ``check`` to each item of a list value."""

    def run(values: Iterable[str]) -> None:
        for value in values:
            check(value)

    return run


def key_value(item: str) -> None:
    """Require ``KEY=VALUE`` with a non-empty key."""
    key, sep, _ = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE, got {item!r}")


def ip_or_network(item: str) -> None:
    """Require an IP address, a CIDR network, or ``*``."""
    if item == "*":
        return
    try:
        ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise ValueError(f"{item!r} is not an IP address or network") from None


def zero_means(replacement: int) -> Converter:
    """An int converter for limits where gunicorn reads 0 as ``replacement``."""

    def run(value: object) -> int:
        number = to_int(value)
        return replacement if number == 0 else number

    return run


# -- gunicorn 27 settings greenserve accepts but does not implement yet ------------------------
PendingKind = Literal["value", "append", "switch", "optional", "file"]


@dataclass(frozen=True)
class Pending:
    """A gunicorn setting that is accepted (with a warning) but not implemented yet."""

    name: str
    section: str
    flags: tuple[str, ...]
    kind: PendingKind


# One row per setting: name, flags (comma-joined, "-" for config-file-only), kind.
# Sections follow gunicorn's settings reference.
_PENDING_TABLE = """
[Worker Processes]
[Debugging]
[Server Mechanics]
[Logging]
[Process Naming]
[HTTP/2]
[Control]
"""

_PENDING_KINDS: dict[str, PendingKind] = {
    "value": "value", "append": "append", "switch": "switch", "optional": "optional",
    "file": "file",
}


def _parse_pending(table: str) -> tuple[Pending, ...]:
    rows: list[Pending] = []
    section = ""
    for line in table.strip().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
            continue
        name, flags, kind = line.split()
        rows.append(Pending(
            name=name, section=section, kind=_PENDING_KINDS[kind],
            flags=() if flags == "-" else tuple(flags.split(",")),
        ))
    return tuple(rows)


PENDING: tuple[Pending, ...] = _parse_pending(_PENDING_TABLE)
