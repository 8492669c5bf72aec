"""Application loading and the adapters that call the app (WSGI, WebSocket)."""
