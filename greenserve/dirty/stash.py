"""The stash: tables of values shared by every worker, kept in the dirty arbiter.

gunicorn 25's ``gunicorn.dirty.stash``, same functions and messages: any process of the
server (HTTP workers, dirty workers) can ``put``/``get`` values by table and key, e.g. a
cache that a dirty app fills and request code reads. Values are what a dirty call may carry
(None, bool, int, float, str, bytes, lists, dicts). The tables live in the dirty arbiter's
memory: they are lost when it restarts.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterator
from typing import Any

from . import protocol
from .client import thread_client
from .errors import DirtyError

PUT, GET, DELETE, KEYS, CLEAR, INFO, ENSURE, DELETE_TABLE, TABLES, EXISTS = range(1, 11)


class StashError(DirtyError):
    """A stash operation failed."""


class StashTableNotFoundError(StashError):
    """No such table."""

    def __init__(self, table: str) -> None:
        super().__init__(f"Table not found: {table}", {"table": table})
        self.table = table


class StashKeyNotFoundError(StashError):
    """No such key in the table."""

    def __init__(self, table: str, key: Any) -> None:
        super().__init__(f"Key not found: {key}", {"table": table, "key": key})
        self.table, self.key = table, key


class Tables:
    """The arbiter's side: the tables and the ten operations (thread-safe)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, Any]] = {}
        self._lock = threading.Lock()

    def apply(self, payload: dict[str, Any]) -> Any:
        """The result of one STASH message; raises StashError (or a subclass)."""
        op, name = payload.get("op"), str(payload.get("table", ""))
        key, value, pattern = payload.get("key"), payload.get("value"), payload.get("pattern")
        with self._lock:
            table = self.tables.get(name)
            if op == PUT:
                self.tables.setdefault(name, {})[key] = value
                return True
            if op == GET:
                if table is None or key not in table:
                    raise StashKeyNotFoundError(name, key)
                return table[key]
            if op == DELETE:
                return table is not None and table.pop(key, _MISSING) is not _MISSING
            if op == KEYS:
                found = list(table or ())
                return [k for k in found if fnmatch.fnmatch(str(k), pattern)] if pattern \
                    else found
            if op == CLEAR:
                if table is not None:
                    table.clear()
                return True
            if op == INFO:
                if table is None:
                    raise StashTableNotFoundError(name)
                return {"size": len(table), "table": name}
            if op == ENSURE:
                self.tables.setdefault(name, {})
                return True
            if op == DELETE_TABLE:
                return self.tables.pop(name, None) is not None
            if op == TABLES:
                return list(self.tables)
            if op == EXISTS:
                return table is not None and (key is None or key in table)
        raise StashError(f"Unknown stash operation: {op}")


_MISSING = object()


def _do(op: int, table: str, key: Any = None, value: Any = None,
        pattern: str | None = None) -> Any:
    payload: dict[str, Any] = {"op": op, "table": table}
    for name, item in (("key", key), ("value", value), ("pattern", pattern)):
        if item is not None:
            payload[name] = item
    for kind, body in thread_client("stash").exchange(protocol.STASH, payload):
        if kind == protocol.RESPONSE:
            return body.get("result")
        error = body.get("error") or {}
        kind_name = error.get("error_type")
        if kind_name == "StashKeyNotFoundError":
            raise StashKeyNotFoundError(table, key)
        if kind_name == "StashTableNotFoundError":
            raise StashTableNotFoundError(table)
        raise StashError(str(error.get("message") or "stash operation failed"))
    raise StashError("no answer from the dirty arbiter")


def put(table: str, key: Any, value: Any) -> None:
    """Store ``value`` under ``key`` (the table is made if needed)."""
    _do(PUT, table, key=key, value=value)


def get(table: str, key: Any, default: Any = None) -> Any:
    """The value under ``key``, or ``default``."""
    try:
        return _do(GET, table, key=key)
    except StashKeyNotFoundError:
        return default


def delete(table: str, key: Any) -> bool:
    """Remove ``key``; whether it was there."""
    return bool(_do(DELETE, table, key=key))


def keys(table: str, pattern: str | None = None) -> list[Any]:
    """The keys of ``table`` (matching the glob ``pattern``, when given)."""
    return list(_do(KEYS, table, pattern=pattern) or ())


def clear(table: str) -> None:
    """Remove every key of ``table``."""
    _do(CLEAR, table)


def info(table: str) -> dict[str, Any]:
    """``{"size": N, "table": name}``; StashTableNotFoundError if there is no such table."""
    return dict(_do(INFO, table))


def ensure(table: str) -> None:
    """Make ``table`` if it does not exist."""
    _do(ENSURE, table)


def exists(table: str, key: Any = None) -> bool:
    """Whether ``table`` exists (and holds ``key``, when given)."""
    return bool(_do(EXISTS, table, key=key))


def delete_table(table: str) -> bool:
    """Remove ``table``; whether it was there."""
    return bool(_do(DELETE_TABLE, table))


def tables() -> list[str]:
    """The names of the tables."""
    return list(_do(TABLES, "") or ())


def table(name: str) -> StashTable:
    """A dict-like view of one table."""
    return StashTable(name)


class StashTable:
    """``stash.table("cache")["k"] = v`` and friends."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getitem__(self, key: Any) -> Any:
        return _do(GET, self.name, key=key)

    def __setitem__(self, key: Any, value: Any) -> None:
        put(self.name, key, value)

    def __delitem__(self, key: Any) -> None:
        if not delete(self.name, key):
            raise KeyError(key)

    def __contains__(self, key: Any) -> bool:
        return exists(self.name, key)

    def __iter__(self) -> Iterator[Any]:
        return iter(keys(self.name))

    def __len__(self) -> int:
        return int(_do(INFO, self.name)["size"]) if exists(self.name) else 0

    def get(self, key: Any, default: Any = None) -> Any:
        return get(self.name, key, default)

    def keys(self, pattern: str | None = None) -> list[Any]:
        return keys(self.name, pattern)
