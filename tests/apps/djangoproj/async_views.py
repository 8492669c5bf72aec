"""Views for the asyncio tests: async views (ASGI) and WSGI views that use asyncio.

Under gevent every greenlet shares one OS thread, and CPython keeps the running event loop
per thread: without greenserve's running-loop hook, a loop parked in one greenlet makes
Django's ORM refuse to run (``SynchronousOnlyOperation``) in every other one.
"""

from __future__ import annotations

import asyncio
import os

from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.models import User
from django.http import HttpRequest, JsonResponse


def _count_users() -> int:
    return User.objects.count()


def _os_thread() -> int:
    from gevent.monkey import get_original

    return get_original("_thread", "get_ident")()  # type: ignore[no-any-return]


async def async_orm(request: HttpRequest) -> JsonResponse:
    """An async view: the ORM through ``sync_to_async`` (thread-sensitive, then not), and
    the OS thread each ran in (greenlets under patching: the view's own thread)."""
    await asyncio.sleep(0.01)
    count, sensitive = await sync_to_async(lambda: (_count_users(), _os_thread()))()
    again, insensitive = await sync_to_async(lambda: (_count_users(), _os_thread()),
                                             thread_sensitive=False)()
    return JsonResponse({"users": count, "again": again, "pid": os.getpid(),
                         "threads": [_os_thread(), sensitive, insensitive]})


async def async_sleep(request: HttpRequest) -> JsonResponse:
    await asyncio.sleep(float(request.GET.get("s", "0.05")))
    return JsonResponse({"slept": True})


def hold_loop(request: HttpRequest) -> JsonResponse:
    """A sync view that runs its own event loop for a while (asyncio.run in a greenlet)."""

    async def work() -> str:
        await asyncio.sleep(float(request.GET.get("s", "0.5")))
        return "done"

    return JsonResponse({"result": asyncio.run(work())})


def orm_count(request: HttpRequest) -> JsonResponse:
    """A plain sync view using the ORM, possibly while another greenlet's loop is parked."""
    return JsonResponse({"users": _count_users()})


def sync_bridge(request: HttpRequest) -> JsonResponse:
    """``async_to_sync`` inside a sync view (Channels' ``group_send`` does this)."""

    async def work() -> int:
        await asyncio.sleep(0.05)
        return await sync_to_async(_count_users)()

    return JsonResponse({"users": async_to_sync(work)()})
