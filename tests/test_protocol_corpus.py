"""Every case of the shared gunicorn and llhttp request corpora, through the sans-io layer.

Each case is fed whole, one byte at a time and in seeded random pieces, then EOF, to each
implementation (the ``http_parser`` fixture). How a
case is judged (``Case.kind``) and the deliberate deviations from the corpus' own
expectations live in ``corpus_harness.py``, which ``tools/corpus_report.py`` also uses.

Body streaming note: a request head is dispatched as soon as it is complete (the body is
streamed, as in gunicorn), so for an error *inside* a body (bad chunk size, forbidden
trailer) the head was already dispatched; what must never happen is that request
completing, or anything after it being parsed.
"""

from __future__ import annotations

from collections import Counter

import pytest
from corpus_harness import (
    CHUNKINGS,
    DEVIATIONS,
    Case,
    all_cases,
    drive,
    gunicorn_cases,
    llhttp_cases,
    shared_dir,
)
from corpus_judges import judge

ROOT = shared_dir()
if ROOT is None:
    pytest.skip(
        "shared/ corpus not found (looked at ../shared and $GREENSERVE_SHARED)",
        allow_module_level=True,
    )

CASES = list(all_cases())


def _params() -> list[object]:
    params: list[object] = []
    for case in CASES:
        # PROXY-protocol cases are not HTTP parsing (they belong to the connection's PROXY
        # reader, a later issue); they are left out, and test_every_case_is_loaded pins
        # that only they are.
        if case.skip:
            continue
        params.extend(
            pytest.param(case, chunking, id=f"{case.id}[{chunking}]") for chunking in CHUNKINGS
        )
    return params


@pytest.mark.usefixtures("http_parser")
@pytest.mark.parametrize(("case", "chunking"), _params())
def test_corpus_case(case: Case, chunking: str) -> None:
    problems = judge(case, chunking)
    assert not problems, f"{case.id} ({case.kind}; {case.note})\n" + "\n".join(problems)


def test_every_case_is_loaded() -> None:
    assert ROOT is not None
    gunicorn = gunicorn_cases(ROOT)
    llhttp = llhttp_cases(ROOT)
    assert len(gunicorn) == 137
    assert len(llhttp) == 166
    assert Counter(c.corpus for c in CASES) == {"gunicorn": 137, "llhttp": 166}
    # Only the PROXY-protocol cases are skipped.
    assert sorted(c.id for c in CASES if c.skip) == sorted(
        c.id for c in gunicorn if "/pp_" in c.id
    )


def test_deviations_name_real_cases() -> None:
    ids = {c.id for c in CASES}
    assert set(DEVIATIONS) <= ids


def _without_host_cases() -> list[Case]:
    return [
        c for c in CASES
        if c.injected and not c.skip and c.kind in ("accept", "accept-or-400")
    ]


@pytest.mark.usefixtures("http_parser")
@pytest.mark.parametrize("case", _without_host_cases(), ids=lambda c: c.id)
def test_http11_without_host_is_400(case: Case) -> None:
    """RFC 9112 3.2: the original bytes (no Host) get 400, and no such request is served."""
    out = drive(case.raw, case.limits)
    assert out.error is not None
    assert (out.error.status_code, out.error.reason) == (400, "missing Host header")
    for served in out.complete():
        request = served.request
        assert request.http_version == b"1.0" or any(
            n.lower() == b"host" for n, _ in request.headers
        )
