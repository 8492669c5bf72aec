"""Settings for the Channels test project: no database, the in-memory channel layer."""

from __future__ import annotations

SECRET_KEY = "greenserve-channels-tests-not-a-secret-0123456789-abcdefghijklmnop"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["channels"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "channelsproj.urls"
ASGI_APPLICATION = "channelsproj.asgi.application"
DATABASES: dict[str, object] = {}
USE_TZ = True
TIME_ZONE = "UTC"  # Django sets the process TZ from it (the default is America/Chicago)

# One worker process (the tests run -w 1): the in-memory layer is shared by its consumers.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
