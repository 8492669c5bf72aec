"""The server's SSLContext, built from the SSL settings and the ``ssl_context`` hook."""

from __future__ import annotations

import ssl
from typing import Any


def build_context(cfg: Any) -> ssl.SSLContext | None:
    """None without ``--certfile``; otherwise what the ``ssl_context`` hook returns.

    Called in the worker after gevent has patched ``ssl``, so the context wraps sockets
    cooperatively. The hook gets gunicorn's arguments: the config and a factory for the
    context greenserve would build by itself.
    """
    if not cfg.certfile:
        return None

    def default_ssl_context_factory() -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cfg.ca_certs)
        context.load_cert_chain(cfg.certfile, cfg.keyfile)
        context.verify_mode = ssl.VerifyMode(cfg.cert_reqs)
        if cfg.ciphers:
            context.set_ciphers(cfg.ciphers)
        return context

    context = cfg.ssl_context(cfg, default_ssl_context_factory)
    if not isinstance(context, ssl.SSLContext):
        raise TypeError(f"the ssl_context hook returned {type(context).__name__}, "
                        "not an ssl.SSLContext")
    if "h2" in cfg.http_protocols:
        # Offered in the order of --http-protocols (h2,h1 prefers HTTP/2).
        from .config.http2 import ALPN_NAMES

        context.set_alpn_protocols([ALPN_NAMES[name] for name in cfg.http_protocols])
    return context
