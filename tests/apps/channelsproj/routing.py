"""WebSocket routes."""

from __future__ import annotations

from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/echo/", consumers.AsyncEchoConsumer.as_asgi()),
    path("ws/sync-echo/", consumers.SyncEchoConsumer.as_asgi()),
    path("ws/refuse/", consumers.RefusingConsumer.as_asgi()),
    path("ws/chat/<str:room>/", consumers.AsyncChatConsumer.as_asgi()),
    path("ws/sync-chat/<str:room>/", consumers.SyncChatConsumer.as_asgi()),
]
