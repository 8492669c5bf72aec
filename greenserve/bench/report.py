"""The report: one list of blocks, written as ``report.md`` and as ``report.html``.

Both files carry the same content; the plots are PNG files next to them, linked from both.
The summary table is also what the command prints when it finishes.
"""

from __future__ import annotations

import html
import importlib.metadata
import platform
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from greenserve.bench.options import BenchOptions
from greenserve.bench.results import Row, RunResult

NO_PLOTS = "No plots: matplotlib is not installed (pip install 'greenserve[bench]')."
CPU_WARNING = "CPU usage above"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str
    code: bool = False


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    path: str
    alt: str


Block = Heading | Para | Table | Image


def _ms(value: float | None) -> str:
    """A percentile: Locust keeps whole milliseconds (coarser above 100), 0 is under 0.5."""
    if value is None:
        return "n/a"
    return "<1" if value == 0 else f"{value:,.0f}"


def _avg_ms(value: float) -> str:
    return f"{value:,.1f}"


def summary_table(runs: list[RunResult]) -> Table:
    """One row per server: totals over its whole run."""
    header = ["server", "URL", "requests", "failures", "req/s", "avg ms", "p50 ms", "p90 ms",
              "p99 ms", "max ms"]
    return Table(header, [[run.label, run.url, *_row_cells(run.total)] for run in runs])


def _row_cells(row: Row) -> list[str]:
    return [f"{row.requests:,}", f"{row.failures:,}", f"{row.rps:,.1f}", _avg_ms(row.avg_ms),
            _ms(row.p50_ms), _ms(row.p90_ms), _ms(row.p99_ms), _ms(row.max_ms)]


def _ratio(a: float | None, b: float | None) -> str:
    return f"**{a / b:.2f}**" if a is not None and b else "n/a"


def comparison_table(runs: list[RunResult]) -> Table:
    """The first server against each other one, metric by metric, with the ratio."""
    first = runs[0]
    header = ["metric", first.label]
    for other in runs[1:]:
        header += [other.label, f"{first.label}/{other.label}"]
    metrics = [("req/s", "rps"), ("p50 ms", "p50_ms"), ("p90 ms", "p90_ms"), ("p99 ms", "p99_ms")]
    rows = []
    for name, attr in metrics:
        mine: float | None = getattr(first.total, attr)
        show = _num if attr == "rps" else _ms
        cells = [name, show(mine)]
        for other in runs[1:]:
            theirs: float | None = getattr(other.total, attr)
            cells += [show(theirs), _ratio(mine, theirs)]
        rows.append(cells)
    return Table(header, rows)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def endpoint_table(runs: list[RunResult]) -> Table:
    """One row per server and request name."""
    header = ["server", "path", "requests", "failures", "req/s", "p50 ms", "p99 ms"]
    rows = [[run.label, row.name, f"{row.requests:,}", f"{row.failures:,}", f"{row.rps:,.1f}",
             _ms(row.p50_ms), _ms(row.p99_ms)] for run in runs for row in run.endpoints]
    return Table(header, rows)


def failure_table(runs: list[RunResult]) -> Table:
    """Each kind of failure, most frequent first, per server."""
    header = ["server", "request", "error", "count"]
    rows = [[run.label, f"{f.method} {f.name}", f.error, f"{f.occurrences:,}"]
            for run in runs for f in run.failures]
    return Table(header, rows)


def build(opts: BenchOptions, argv: list[str], runs: list[RunResult],
          plots: list[Path] | None, out_dir: Path) -> list[Block]:
    """The whole report; ``plots`` is None when matplotlib is missing."""
    blocks: list[Block] = [
        Heading("greenserve bench", 1),
        Para(shlex.join(["greenserve", "bench", *argv]), code=True),
        Para(_setup_line(opts)),
        Heading("Summary"), summary_table(runs),
    ]
    if len(runs) > 1:
        blocks += [Heading("Comparison"), comparison_table(runs), Para(
            f"{runs[0].label}/other above 1 for req/s: {runs[0].label} served more; "
            "below 1 for a latency: it answered faster. The servers ran one after the "
            "other, under the same load.")]
    blocks += [Heading("Per path"), endpoint_table(runs)]
    if any(run.failures for run in runs):
        blocks += [Heading("Failures"), failure_table(runs)]
    blocks.append(Heading("Over time"))
    if plots is None:
        blocks.append(Para(NO_PLOTS))
    else:
        blocks += [Image(p.name, p.stem.replace("_", " ")) for p in plots]
    blocks += _warnings(opts, runs)
    names = sorted({f.relative_to(out_dir).as_posix() for run in runs for f in run.files})
    blocks += [Heading("Files"), Para(", ".join(names))]
    return blocks


def _setup_line(opts: BenchOptions) -> str:
    what = (f"locustfile {opts.locustfile}" if opts.locustfile
            else "GET " + ", ".join(f"{p} (weight {w})" for p, w in opts.paths or [("/", 1)]))
    return (f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}. {opts.users} users "
            f"(spawn rate {opts.spawn_rate:g}/s), {opts.run_time} per server, {what}. "
            f"Locust {_version('locust')} ({opts.processes} process"
            f"{'es' if opts.processes > 1 else ''}), Python {platform.python_version()}, "
            f"greenserve {_version('greenserve')}.")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "(unknown version)"


def _warnings(opts: BenchOptions, runs: list[RunResult]) -> list[Block]:
    """What makes the numbers less than they seem: a saturated Locust, unequal workers."""
    notes: list[Block] = []
    busy = [run.label for run in runs for f in run.files
            if f.suffix == ".log" and CPU_WARNING in f.read_text("utf-8", "replace")]
    if busy:
        notes.append(Para(
            f"Locust's CPU went above 90 % during the run of {', '.join(busy)}: the numbers "
            "are limited by the load generator. Try --processes N, or fewer --users."))
    workers = {"-w", "--workers"}
    if opts.compare and not any(a in workers or a.startswith("--workers=")
                                for a in opts.server_args):
        notes.append(Para(
            "No -w in --server-args: greenserve starts one worker per CPU core by default, "
            "gunicorn one. Give both the same count, e.g. --server-args \"-w 1\"."))
    return [Heading("Warnings"), *notes] if notes else []


def to_markdown(blocks: list[Block]) -> str:
    """The report as Markdown."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Para):
            out.append(f"```sh\n{block.text}\n```" if block.code else block.text)
        elif isinstance(block, Table):
            out.append(markdown_table(block))
        else:
            out.append(f"![{block.alt}]({block.path})")
    return "\n\n".join(out) + "\n"


def markdown_table(table: Table) -> str:
    """A GitHub-style Markdown table."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    rows = [line(table.header), line(["---"] * len(table.header))]
    return "\n".join(rows + [line(row) for row in table.rows])


def to_html(blocks: list[Block]) -> str:
    """The report as a standalone HTML page (the images are the PNG files next to it)."""
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            text = html.escape(block.text)
            body.append(f"<pre><code>{text}</code></pre>" if block.code else f"<p>{text}</p>")
        elif isinstance(block, Table):
            body.append(_html_table(block))
        else:
            body.append(f'<p><img src="{html.escape(block.path)}" '
                        f'alt="{html.escape(block.alt)}"></p>')
    return _PAGE.format(body="\n".join(body))


def _html_table(table: Table) -> str:
    def cells(tag: str, values: list[str]) -> str:
        return "".join(f"<{tag}>{html.escape(v).replace('**', '')}</{tag}>" for v in values)
    rows = [f"<tr>{cells('td', row)}</tr>" for row in table.rows]
    return f"<table><tr>{cells('th', table.header)}</tr>{''.join(rows)}</table>"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>greenserve bench</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em;
text-align:right}}td:first-child,th:first-child{{text-align:left}}img{{max-width:100%}}
pre{{background:#f4f4f4;padding:.5em;overflow-x:auto}}</style></head>
<body>
{body}
</body></html>
"""


def write(out_dir: Path, blocks: list[Block]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; their paths."""
    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(to_markdown(blocks), encoding="utf-8")
    page.write_text(to_html(blocks), encoding="utf-8")
    return md, page
