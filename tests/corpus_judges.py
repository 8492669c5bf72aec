"""How the corpus cases are judged: one rule per ``Case.kind``.

See ``corpus_harness.py`` for how the cases are built and driven. :func:`judge` returns the
failure messages (empty = pass) for one case fed in one chunking.
"""

from __future__ import annotations

from collections.abc import Callable

from corpus_harness import INJECTED_HOST, Case, Expected, Outcome, Served, drive

from greenserve.protocol.events import Headers


def _norm_headers(headers: Headers, *, drop_underscore: bool, drop_host: bool) -> Headers:
    out = []
    for name, value in headers:
        if drop_underscore and b"_" in name:
            continue  # gunicorn's default header_map=drop, applied when building the environ
        if drop_host and (name.lower(), value) == INJECTED_HOST:
            continue
        out.append((name.lower(), value.strip(b" \t")))
    return out


def compare(case: Case, served: Served, exp: Expected, index: int) -> list[str]:
    """Differences between what was served and what the corpus expects."""
    req = served.request
    fields = req.headers
    if case.corpus == "llhttp":
        fields = [*fields, *(served.trailers or [])]  # llhttp reports trailers as headers
    drop_host = case.injected and not any(n.lower() == b"host" for n, _ in exp.headers)
    ours = _norm_headers(fields, drop_underscore=not case.keep_underscore,
                         drop_host=drop_host)
    theirs = _norm_headers(exp.headers, drop_underscore=False, drop_host=False)
    pairs = [
        ("method", req.method, exp.method),
        ("target", req.target, exp.target),
        ("version", req.http_version, exp.version),
        ("headers", ours, theirs),
        ("body", served.body, exp.body),
    ]
    if exp.trailers is not None:
        pairs.append(("trailers", _norm_headers(served.trailers or [], drop_underscore=False,
                                                drop_host=False),
                      _norm_headers(exp.trailers, drop_underscore=False, drop_host=False)))
    return [
        f"request {index}: {what} {got!r} != expected {want!r}"
        for what, got, want in pairs
        if got != want
    ]


def _matches(case: Case, out: Outcome, expected: list[Expected]) -> list[str]:
    done = out.complete()
    if len(done) != len(expected):
        return [f"{len(done)} complete requests, expected {len(expected)}: {_summary(out)}"]
    return [msg for i, (s, e) in enumerate(zip(done, expected, strict=True))
            for msg in compare(case, s, e, i)]


def _summary(out: Outcome) -> str:
    reqs = [(s.request.method, s.request.target, s.complete) for s in out.served]
    err = (out.error.status_code, out.error.reason) if out.error else None
    return f"served={reqs} error={err} closed={out.closed} stalled={out.stalled}"


def _invariants(out: Outcome) -> list[str]:
    problems = []
    if out.stalled:
        problems.append(f"stalled after EOF: {_summary(out)}")
    if out.after_error:
        problems.append(f"events after a ProtocolError: {out.after_error!r}")
    if out.error is not None and out.error.reason == "missing Host header":
        problems.append("missing Host: the harness failed to inject one")
    if out.error is not None and out.error.reason.startswith(("h11:", "httptools:")):
        # Only the parser's own grammar (the backstop) refused this: policy.py has a gap.
        problems.append(f"policy gap, only the parser refused this: {out.error.reason}")
    return problems


def _rejected(out: Outcome, statuses: tuple[int | None, ...], before: int = 0) -> list[str]:
    """The stream ends in a ProtocolError with an acceptable status after ``before``
    complete requests, and the bad request never completes."""
    if out.error is None:
        return [f"not rejected: {_summary(out)}"]
    problems = []
    if out.error.status_code not in statuses:
        problems.append(f"status {out.error.status_code} not in {statuses}: {_summary(out)}")
    if len(out.served) - len(out.complete()) > 1:
        problems.append(f"more than one unfinished request: {_summary(out)}")
    if len(out.complete()) != before:
        problems.append(f"{len(out.complete())} complete requests before the error, "
                        f"expected {before}: {_summary(out)}")
    return problems


def _judge_accept(case: Case, out: Outcome) -> list[str]:
    return _matches(case, out, case.expected)


def _judge_accept_or(status: int) -> Callable[[Case, Outcome], list[str]]:
    def judge_(case: Case, out: Outcome) -> list[str]:
        if out.error is not None and out.error.status_code == status and not out.served:
            return []
        return _matches(case, out, case.expected)

    return judge_


def _judge_reject_status(*statuses: int | None) -> Callable[[Case, Outcome], list[str]]:
    def judge_(case: Case, out: Outcome) -> list[str]:
        return _rejected(out, statuses, 0)

    return judge_


def _judge_reject(case: Case, out: Outcome) -> list[str]:
    return _rejected(out, case.acceptable, 0)


def _judge_llhttp_reject(case: Case, out: Outcome) -> list[str]:
    problems = _rejected(out, (400, 414, 431, 501, 505, None), len(case.expected))
    return problems or _matches(case, Outcome(served=out.complete()), case.expected)


def _judge_reject_or_policy(case: Case, out: Outcome) -> list[str]:
    if out.error is None:
        return []  # a legal-but-unusual request passed to the app: allowed
    return _rejected(out, case.acceptable, len([e for e in case.expected if e.complete]))


def _judge_incomplete(case: Case, out: Outcome) -> list[str]:
    done = [e for e in case.expected if e.complete]
    problems = _rejected(out, (None, 400), len(done))
    return problems or _matches(case, Outcome(served=out.complete()), done)


def _judge_serve_first(case: Case, out: Outcome) -> list[str]:
    problems = _matches(case, out, case.expected[:1])
    if out.error is not None or len(out.served) != 1:
        problems.append(f"expected one request then close: {_summary(out)}")
    return problems


def _judge_upgrade(case: Case, out: Outcome) -> list[str]:
    if not out.served:
        return [f"upgrade/CONNECT request not dispatched: {_summary(out)}"]
    first, exp = out.served[0], case.expected[0]
    problems = compare(case, Served(first.request, exp.body if not first.body else first.body,
                                    None, True), exp, 0)
    wants_upgrade = any(n.lower() == b"upgrade" for n, _ in exp.headers) and any(
        n.lower() == b"connection" and b"upgrade" in v.lower() for n, v in exp.headers
    )
    if wants_upgrade and first.request.upgrade is None:
        problems.append("Upgrade request without Request.upgrade set")
    return [p for p in problems if "body" not in p]


def _judge_truncated(case: Case, out: Outcome) -> list[str]:
    """valid/099: the head is fine, the body is shorter than its Content-Length."""
    problems = _rejected(out, (None,), 0)
    if len(out.served) != 1:
        problems.append(f"expected exactly the truncated request: {_summary(out)}")
    return problems


def _judge_above_protocol(case: Case, out: Outcome) -> list[str]:
    """header_map=refuse / forwarded_allow_ips are applied when building the environ: this
    layer must deliver the request with the fields those rules look at, untouched."""
    if not out.served:
        return [f"request not delivered to the WSGI layer: {_summary(out)}"]
    lines = case.data.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    names = {line.partition(b":")[0] for line in lines}
    got = {n for n, _ in out.served[0].request.headers}
    return [] if names <= got else [f"fields lost: {names - got!r}"]


def _judge_informational(case: Case, out: Outcome) -> list[str]:
    """llhttp lenient-mode cases: a strict server may refuse them; it must stay safe."""
    if out.error is not None and out.error.status_code not in (400, 431, 501, 505, None):
        return [f"unexpected status {out.error.status_code}"]
    return []


JUDGES: dict[str, Callable[[Case, Outcome], list[str]]] = {
    "accept": _judge_accept,
    "accept-or-400": _judge_accept_or(400),
    "accept-or-501": _judge_accept_or(501),
    "truncated-body": _judge_truncated,
    "reject": _judge_reject,
    "reject-400": _judge_reject_status(400),
    "reject-505": _judge_reject_status(505),
    "above-protocol": _judge_above_protocol,
    "llhttp-reject": _judge_llhttp_reject,
    "reject-or-policy": _judge_reject_or_policy,
    "serve-first-then-close": _judge_serve_first,
    "accept-or-upgrade": _judge_upgrade,
    "incomplete": _judge_incomplete,
    "informational": _judge_informational,
}


def judge(case: Case, chunking: str) -> list[str]:
    """Failures for one case fed in one chunking (empty list = pass)."""
    out = drive(case.data, case.limits, chunking)
    problems = _invariants(out) + JUDGES[case.kind](case, out)
    if chunking != "whole":
        whole = drive(case.data, case.limits, "whole")
        if _fingerprint(whole) != _fingerprint(out):
            problems.append(f"differs from whole-buffer parsing: {_summary(out)} vs "
                            f"{_summary(whole)}")
    return problems


def _fingerprint(out: Outcome) -> tuple[object, ...]:
    served = [(s.request, s.body, s.trailers, s.complete) for s in out.served]
    status = out.error.status_code if out.error else "none"
    return (served, status, out.closed)
