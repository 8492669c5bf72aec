"""The demo app that `make run` serves answers on every link of its page."""

from __future__ import annotations

import requests


def test_demo_app_pages(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("greenserve.demo:app")
    page = requests.get(server.url + "/")
    assert page.status_code == 200 and "greenserve" in page.text
    for link in ("/hello", "/stream", "/slow?seconds=0.2", "/environ"):
        assert f'href="{link.replace("0.2", "1")}"' in page.text or link.startswith("/slow")
        resp = requests.get(server.url + link)
        assert resp.status_code == 200, link
    assert requests.get(server.url + "/stream").text.count("line") == 10
    assert requests.get(server.url + "/slow?seconds=x").status_code == 400
    assert requests.get(server.url + "/nope").status_code == 404
