"""Print how the sans-io HTTP/1 layer does on the shared request corpora.

    .venv/bin/python tools/corpus_report.py [-v]

A case passes when it passes in every chunking (whole, 1-byte pieces, seeded random
pieces). The judging rules are the ones ``tests/test_protocol_corpus.py`` uses
(``tests/corpus_harness.py``); skipped cases (PROXY protocol) count as not passed. Exits 1
when a case fails, 2 when the corpora are missing.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from corpus_harness import CHUNKINGS, DEVIATIONS, Case, all_cases, drive  # noqa: E402
from corpus_judges import judge  # noqa: E402


def failures(case: Case) -> list[str]:
    """Every problem of ``case``, in every chunking, prefixed by the chunking."""
    return [f"[{chunking}] {msg}" for chunking in CHUNKINGS for msg in judge(case, chunking)]


def main(argv: list[str]) -> int:
    cases = list(all_cases())
    if not cases:
        print("shared/ corpus not found (../shared or $GREENSERVE_SHARED)")
        return 2
    passed: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    skipped: Counter[tuple[str, str]] = Counter()
    failed: dict[str, list[str]] = defaultdict(list)
    outcomes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for case in cases:
        key = (case.corpus, case.cls)
        total[key] += 1
        if case.skip:
            skipped[key] += 1
            continue
        outcomes[key][_outcome(case)] += 1
        problems = failures(case)
        if problems:
            failed[case.id] = problems
        else:
            passed[key] += 1
    corpora = ("gunicorn", "llhttp")
    print(", ".join(
        f"{name} corpus: {_sum(passed, name)}/{_sum(total, name)} pass" for name in corpora
    ))
    for name in corpora:
        print(f"\n{name}:")
        for key in sorted(k for k in total if k[0] == name):
            how = ", ".join(f"{n} {label}" for label, n in sorted(outcomes[key].items()))
            extra = f"; {skipped[key]} skipped: PROXY protocol" if skipped[key] else ""
            print(f"  {key[1]:<24} {passed[key]:>3}/{total[key]:<3} ({how}{extra})")
    print(f"\ndeliberate deviations from the corpus expectations ({len(DEVIATIONS)}):")
    for case_id, (kind, reason) in DEVIATIONS.items():
        print(f"  {case_id} -> judged as {kind}" + (f": {reason}" if "-v" in argv else ""))
    above = [c.id for c in cases if c.kind == "above-protocol"]
    print(f"\nsettings applied above this layer, checked as 'delivered intact' ({len(above)}):")
    print("  " + ", ".join(above))
    print(f"\nfailures ({len(failed)}):" if failed else "\nfailures: none")
    for case_id, problems in failed.items():
        print(f"  {case_id}")
        for problem in problems[: None if "-v" in argv else 3]:
            print(f"    {problem}")
    return 1 if failed else 0


def _outcome(case: Case) -> str:
    """What the whole-buffer run did: requests served, then where it failed and how."""
    out = drive(case.data, case.limits)
    served = len(out.complete())
    if out.error is None:
        return f"served {served}"
    status = "close" if out.error.status_code is None else out.error.status_code
    # A head is dispatched before its body streams in; an error in the body comes after.
    where = "body" if len(out.served) > served else "head"
    return f"served {served}, then {where} {status}" if served else f"{where} {status}"


def _sum(counter: Counter[tuple[str, str]], corpus: str) -> int:
    return sum(n for (name, _), n in counter.items() if name == corpus)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
