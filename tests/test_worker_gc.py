"""``--gc-threshold``: the worker's generation-0 collection threshold."""

from __future__ import annotations

import requests


def test_the_worker_raises_the_gen0_threshold_by_default(serve) -> None:
    server = serve("-w", "1", "gc_apps:app")
    assert requests.get(server.url + "/", timeout=10).text == "7000,10,10"


def test_the_threshold_is_a_setting_and_0_keeps_pythons(serve) -> None:
    server = serve("-w", "1", "--gc-threshold", "2500", "gc_apps:app")
    assert requests.get(server.url + "/", timeout=10).text == "2500,10,10"
    server = serve("-w", "1", "--gc-threshold", "0", "gc_apps:app")
    assert requests.get(server.url + "/", timeout=10).text == "700,10,10"


def test_an_app_that_set_its_own_thresholds_keeps_them(serve) -> None:
    server = serve("-w", "1", "gc_apps:tuned()")
    assert requests.get(server.url + "/", timeout=10).text == "1234,5,5"
