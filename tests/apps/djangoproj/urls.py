"""URLs: the admin plus the plain views."""

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/echo/", views.echo_json),
    path("meta/", views.meta),
    path("word/<str:word>/", views.word),
    path("finished/", views.finished),
    path("stream/", views.stream),
    path("source/", views.source),
    path("boom/", views.boom),
]
