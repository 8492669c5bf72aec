"""``ws_socketio`` with python-engineio on its gevent-websocket path.

python-engineio's gevent driver uses ``environ["wsgi.websocket"]`` when ``geventwebsocket``
can be imported, and simple-websocket otherwise. gevent-websocket is unmaintained and not a
test dependency, so an empty module stands in for it: only its importability is checked, and
everything else goes through greenserve's ``wsgi.websocket`` object.
"""

from __future__ import annotations

import sys
import types

sys.modules.setdefault("geventwebsocket", types.ModuleType("geventwebsocket"))

from ws_socketio import app, socketio  # noqa: E402

__all__ = ["app", "socketio"]
