"""The HTTP side of the Channels project: plain Django views."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from .consumers import CLOSED


def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"hello": "django", "method": request.method,
                         "q": request.GET.get("q", "")})


def closed(request: HttpRequest) -> JsonResponse:
    return JsonResponse(CLOSED, safe=False)


urlpatterns = [path("hello/", hello), path("closed/", closed)]
