"""Plain views: a JSON echo, the request's META, and a few probes for server behaviour."""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.signals import request_finished
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.csrf import csrf_exempt

FINISHED = {"count": 0}


def _on_finished(**kwargs: Any) -> None:
    FINISHED["count"] += 1


# Fired when the server calls close() on the response: Django closes DB connections there.
request_finished.connect(_on_finished)


@csrf_exempt
def echo_json(request: HttpRequest) -> JsonResponse:
    """Parse ``request.body`` as JSON and send it back with what Django saw."""
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    try:
        data = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "invalid JSON", "raw": request.body.decode("latin-1")},
                            status=400)
    return JsonResponse({
        "received": data,
        "length": len(request.body),
        "content_type": request.content_type,
        "encoding": request.encoding,
    })


@csrf_exempt
def meta(request: HttpRequest) -> JsonResponse:
    """The string-valued ``request.META`` items plus derived request attributes."""
    items = {key: value for key, value in request.META.items() if isinstance(value, str)}
    return JsonResponse({
        "meta": items,
        "host": request.get_host(),
        "port": request.get_port(),
        "scheme": request.scheme,
        "is_secure": request.is_secure(),
        "absolute_uri": request.build_absolute_uri(),
        "path": request.path,
        "path_info": request.path_info,
        "get": request.GET.dict(),
        "pid": os.getpid(),
    })


def word(request: HttpRequest, word: str) -> JsonResponse:
    return JsonResponse({"word": word, "path": request.path})


def finished(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"finished": FINISHED["count"]})


def stream(request: HttpRequest) -> StreamingHttpResponse:
    count = int(request.GET.get("n", "3"))
    return StreamingHttpResponse((f"part {i}\n" for i in range(count)),
                                 content_type="text/plain")


def source(request: HttpRequest) -> FileResponse:
    """This module's own file: Django hands it to ``wsgi.file_wrapper``."""
    return FileResponse(open(__file__, "rb"), content_type="text/x-python")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("django view exploded")


def ws_echo(request: HttpRequest) -> HttpResponse:
    """A WebSocket view on plain Django (docs/how-to/websocket.md): ``wsgi.websocket``."""
    ws = request.environ.get("wsgi.websocket")
    if ws is None:
        return HttpResponse("WebSocket only", status=400)
    ws.send(f"hello {request.path}")
    while (message := ws.receive()) is not None:
        ws.send(message)
    return HttpResponse()  # dropped: the connection has switched to WebSocket
