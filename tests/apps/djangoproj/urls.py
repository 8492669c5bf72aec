"""URLs: the admin plus the plain views."""

from django.contrib import admin
from django.urls import path

from . import async_views, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/echo/", views.echo_json),
    path("meta/", views.meta),
    path("word/<str:word>/", views.word),
    path("finished/", views.finished),
    path("stream/", views.stream),
    path("source/", views.source),
    path("boom/", views.boom),
    path("ws/echo/", views.ws_echo),
    path("async/orm/", async_views.async_orm),
    path("async/sleep/", async_views.async_sleep),
    path("asyncio/hold/", async_views.hold_loop),
    path("asyncio/orm/", async_views.orm_count),
    path("asyncio/bridge/", async_views.sync_bridge),
]
