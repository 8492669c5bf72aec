"""Consumers of both kinds, as the Channels tutorial writes them.

Echo consumers send every message back; ``close NNNN`` makes them close with that code, and
``sleep SECONDS`` makes the sync one block in ``time.sleep`` before answering ``slept``.
Chat consumers join the group of their room and broadcast every message to it through the
channel layer; an async and a sync consumer in the same room hear each other. Close codes
received from clients are recorded in :data:`CLOSED` (shown by the ``/closed/`` view).
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

CLOSED: list[dict[str, Any]] = []


def _close_code(text: str | None) -> int | None:
    if text and text.startswith("close "):
        return int(text.split()[1])
    return None


class AsyncEchoConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        offered = self.scope["subprotocols"]
        await self.accept(offered[0] if offered else None)

    async def receive(self, text_data: str | None = None,
                      bytes_data: bytes | None = None) -> None:
        code = _close_code(text_data)
        if code is not None:
            await self.close(code)
        elif text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)

    async def disconnect(self, code: int) -> None:
        CLOSED.append({"consumer": "async-echo", "code": code})


class SyncEchoConsumer(WebsocketConsumer):
    """Runs in a worker thread (gevent's, once patched) through ``sync_to_async``."""

    def connect(self) -> None:
        self.accept()

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        code = _close_code(text_data)
        if code is not None:
            self.close(code)
        elif text_data is not None and text_data.startswith("sleep "):
            time.sleep(float(text_data.split()[1]))  # blocking, as sync code is
            self.send(text_data="slept")
        elif text_data is not None:
            self.send(text_data="sync:" + text_data)
        else:
            self.send(bytes_data=bytes_data)

    def disconnect(self, code: int) -> None:
        CLOSED.append({"consumer": "sync-echo", "code": code})


class RefusingConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.close()  # before accept: Channels asks the server for a 403


class AsyncChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.group = "chat_" + self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None,
                      bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(
            self.group, {"type": "chat.message", "text": f"async said {text_data}"})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


class SyncChatConsumer(WebsocketConsumer):
    def connect(self) -> None:
        self.group = "chat_" + self.scope["url_route"]["kwargs"]["room"]
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()

    def disconnect(self, code: int) -> None:
        async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        async_to_sync(self.channel_layer.group_send)(
            self.group, {"type": "chat.message", "text": f"sync said {text_data}"})

    def chat_message(self, event: dict[str, Any]) -> None:
        self.send(text_data=event["text"])
