"""A minimal Django Channels project: ``greenserve channelsproj.asgi`` (tests/test_channels.py)."""
