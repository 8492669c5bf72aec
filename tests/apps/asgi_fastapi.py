"""A FastAPI app: JSON models, dependencies, a ``def`` endpoint, lifespan resources.

The lifespan opens an aiosqlite connection and an ``httpx.AsyncClient`` (to
``$UPSTREAM_URL`` when set): both are bound to the loop that created them, so every request
must run on that one loop (the study's design A).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import aiosqlite
import httpx
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    db = await aiosqlite.connect(":memory:")
    await db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    await db.executemany("INSERT INTO items VALUES (?, ?)",
                         [(i, f"item-{i}") for i in range(100)])
    await db.commit()
    upstream = os.environ.get("UPSTREAM_URL")
    client = httpx.AsyncClient(base_url=upstream) if upstream else None
    try:
        yield {"db": db, "client": client}
    finally:
        if client is not None:
            await client.aclose()
        await db.close()


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def get_db(request: Request) -> aiosqlite.Connection:
    db: aiosqlite.Connection = request.state.db
    return db


def pagination(limit: int = 10, offset: int = 0) -> dict[str, int]:
    return {"limit": limit, "offset": offset}


async def current_user(request: Request) -> str:
    return request.headers.get("x-user", "anonymous")


@app.get("/")
async def root() -> dict[str, str]:
    return {"hello": "fastapi"}


@app.post("/items")
async def create_item(item: Item, user: Annotated[str, Depends(current_user)]) -> dict[str, Any]:
    return {"item": item.model_dump(), "user": user, "total": item.price * 2}


@app.get("/items")
async def list_items(db: Annotated[aiosqlite.Connection, Depends(get_db)],
                     page: Annotated[dict[str, int], Depends(pagination)]) -> dict[str, Any]:
    async with db.execute("SELECT id, name FROM items ORDER BY id LIMIT ? OFFSET ?",
                          (page["limit"], page["offset"])) as cursor:
        rows = await cursor.fetchall()
    return {"items": [{"id": r[0], "name": r[1]} for r in rows], "page": page}


@app.get("/items/{item_id}")
async def get_item(item_id: int, db: Annotated[aiosqlite.Connection, Depends(get_db)]
                   ) -> dict[str, Any]:
    async with db.execute("SELECT name FROM items WHERE id = ?", (item_id,)) as cursor:
        row = await cursor.fetchone()
    await asyncio.sleep(0.01)
    return {"id": item_id, "name": row[0] if row else None}


@app.get("/upstream")
async def upstream(request: Request) -> dict[str, Any]:
    client: httpx.AsyncClient = request.state.client
    response = await client.get("/hello")
    return {"status": response.status_code, "body": response.text}


@app.get("/sync")
def sync_endpoint() -> dict[str, Any]:
    """A ``def`` endpoint: FastAPI runs it in anyio's worker "thread" (a greenlet here)."""
    from gevent.monkey import get_original

    started = time.monotonic()
    time.sleep(0.2)  # patched: yields to the hub instead of blocking the worker
    real_ident = get_original("_thread", "get_ident")
    return {"thread": threading.current_thread().name, "os_thread": real_ident(),
            "main_os_thread": MAIN_OS_THREAD, "started": started, "ended": time.monotonic()}


def _main_os_thread() -> int:
    from gevent.monkey import get_original

    ident: int = get_original("_thread", "get_ident")()
    return ident


MAIN_OS_THREAD = _main_os_thread()
