"""The MkDocs site: it builds with ``--strict``, every page is in the nav, its links and
anchors resolve, and the ``greenserve`` command lines in it use only flags that exist.

The last check is what keeps the docs from drifting away from the CLI: a renamed or removed
flag fails here, and so does a page that still shows the "not implemented yet" warning for
a setting that has been implemented since.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from greenserve.bench.options import build_parser as build_bench_parser
from greenserve.config import CMD_ARGS_VARS, PENDING, build_parser, long_flag
from greenserve.ctl import build_parser as build_ctl_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"

HAS_MKDOCS = importlib.util.find_spec("mkdocs") is not None
NOT_IMPLEMENTED = "is accepted for gunicorn compatibility but not implemented yet"


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def rel(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


# -- (1) the site builds, strictly, and its anchors resolve ------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAS_MKDOCS:
        pytest.skip("mkdocs is not installed: pip install -e '.[test]'")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--config-file", str(MKDOCS_YML), "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    return out


def test_site_builds_with_strict(site: Path) -> None:
    assert (site / "index.html").is_file()
    for page in pages():
        folder = page.parent if page.stem == "index" else page.with_suffix("")
        assert (site / rel(folder) / "index.html").is_file(), f"{rel(page)} was not built"


def test_code_blocks_render_as_code(site: Path) -> None:
    """Python-Markdown does not see a fenced block nested in a list item: it comes out as
    inline code starting with the language name. Put such blocks after the list."""
    inline_fence = re.compile(r"<p><code>[\w+-]*\n")
    broken = [str(html.relative_to(site)) for html in site.rglob("*.html")
              if inline_fence.search(html.read_text(encoding="utf-8"))]
    assert not broken, f"fenced code blocks rendered as inline code in: {broken}"


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))


def _parse(path: Path) -> _Anchors:
    parser = _Anchors()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_link_anchor_exists(site: Path) -> None:
    """mkdocs --strict checks that linked pages exist (1.5 cannot check anchors); this does."""
    parsed = {html: _parse(html) for html in site.rglob("*.html")}
    broken = []
    for html, anchors in parsed.items():
        for href in anchors.links:
            url = urlsplit(href)
            if url.scheme or url.netloc or not url.fragment:
                continue
            target = (html.parent / unquote(url.path)).resolve() if url.path else html
            if target.is_dir():
                target = target / "index.html"
            found = parsed.get(target)
            if found is None or unquote(url.fragment) not in found.ids:
                broken.append(f"{html.relative_to(site)}: {href}")
    assert not broken, "links to missing anchors:\n" + "\n".join(broken)


# -- (2) every page is in the nav ----------------------------------------------------------------
def nav_pages() -> list[str]:
    """The .md paths named in mkdocs.yml's nav (read without YAML: mkdocs may be absent)."""
    text = MKDOCS_YML.read_text(encoding="utf-8")
    nav = text[text.index("\nnav:"):]
    return re.findall(r"^\s+- (?:[^:\n]+:\s*)?(\S+\.md)\s*$", nav, flags=re.MULTILINE)


def test_every_page_is_in_the_nav() -> None:
    listed = nav_pages()
    missing = [rel(p) for p in pages() if rel(p) not in listed]
    assert not missing, f"add these pages to the nav in mkdocs.yml: {missing}"
    absent = [p for p in listed if not (DOCS / p).is_file()]
    assert not absent, f"the nav in mkdocs.yml names pages that do not exist: {absent}"
    assert len(listed) == len(set(listed)), "a page is in the nav twice"


# -- (3) greenserve command lines use only real flags --------------------------------------------
@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    text: str


def code_blocks(page: Path) -> Iterator[Block]:
    """Fenced code blocks, also when indented under a list item or an admonition."""
    lines = page.read_text(encoding="utf-8").splitlines()
    fence = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
    i = 0
    while i < len(lines):
        opened = fence.match(lines[i])
        if not opened:
            i += 1
            continue
        indent, marker, lang = opened.groups()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(marker):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        yield Block(rel(page), i + 1, lang, "\n".join(body))
        i = j + 1


def shell_lines(block: Block) -> Iterator[str]:
    """Command lines of a block: ``$ `` lines of a console block, every line of the others,
    with backslash continuations joined."""
    text = re.sub(r"\\\n\s*", " ", block.text)
    for line in text.splitlines():
        if block.lang == "console":
            if line.startswith("$ "):
                yield line[2:]
        else:
            yield line.removeprefix("ExecStart=")


def split_commands(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote in output or prose: not a command line
        return []
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token and set(token) <= set(";&|()"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def greenserve_args(line: str) -> Iterator[list[str]]:
    """The argument lists of every greenserve invocation on a shell line.

    Also yields the contents of ``GUNICORN_CMD_ARGS=...``/``GREENSERVE_CMD_ARGS=...``
    assignments in front of the command, which greenserve parses like its command line.
    """
    for command in split_commands(line):
        while command and (command[0] == "sudo" or re.match(r"^[A-Za-z_]\w*=", command[0])):
            name, _, value = command.pop(0).partition("=")
            if name in CMD_ARGS_VARS:
                yield shlex.split(value)
        if not command:
            continue
        program = command[0].rsplit("/", 1)[-1]
        if program == "greenserve":
            yield command[1:]
        elif re.fullmatch(r"python[\d.]*", program) and command[1:3] == ["-m", "greenserve"]:
            yield command[3:]


def flags_in(args: list[str]) -> list[str]:
    """The flags among ``args``; a quoted value such as ``--server-args "-w 1"`` is none."""
    return [a.split("=", 1)[0] for a in args if re.match(r"^--?[A-Za-z][\w-]*(=|$)", a)]


def known_flags() -> set[str]:
    return {flag for action in build_parser()._actions for flag in action.option_strings}


def bench_flags() -> set[str]:
    """The flags of ``greenserve bench``, which has a parser of its own."""
    return {flag for action in build_bench_parser()._actions for flag in action.option_strings}


def flags_for(args: list[str], known: set[str]) -> set[str]:
    """The flags valid in a ``greenserve`` argument list: the server's, or those of the
    ``bench`` or ``ctl`` command."""
    if args[:1] == ["ctl"]:
        return {flag for action in build_ctl_parser()._actions for flag in action.option_strings}
    return bench_flags() if args[:1] == ["bench"] else known


def pending_flags() -> dict[str, str]:
    """Every flag of a setting that is accepted but not implemented, to its long flag."""
    return {f: long_flag(p.flags) for p in PENDING for f in p.flags}


def test_the_flag_extraction_sees_the_forms_used_in_the_docs() -> None:
    line = ('GUNICORN_CMD_ARGS="--bind 127.0.0.1:9001 --workers 3" greenserve --print-config '
            "| grep -E '^(bind|workers) '; sudo /srv/.venv/bin/greenserve -b=:80 app:app")
    assert [flags_in(a) for a in greenserve_args(line)] == [
        ["--bind", "--workers"], ["--print-config"], ["-b"]]
    assert list(greenserve_args("journalctl -u greenserve -f")) == []
    assert list(greenserve_args("python -m greenserve -w 2 app:app")) == [["-w", "2", "app:app"]]
    bench = 'greenserve bench --app a:b --server-args "-w 1" -u 5'
    assert [flags_in(a) for a in greenserve_args(bench)] == [["--app", "--server-args", "-u"]]
    assert "--users" in flags_for(["bench"], known_flags()) - known_flags()
    unit = "ExecStart=/srv/bin/greenserve \\\n    --bind fd://3 \\\n    m.wsgi"
    block = Block("x.md", 1, "ini", unit)
    assert [flags_in(a) for line in shell_lines(block) for a in greenserve_args(line)] == [
        ["--bind"]]


def test_every_flag_in_the_docs_exists() -> None:
    known = known_flags()
    pending = pending_flags()
    unknown, undisclosed = [], []
    for page in pages():
        for block in code_blocks(page):
            if block.lang == "python":
                continue
            for line in shell_lines(block):
                for args in greenserve_args(line):
                    for flag in flags_in(args):
                        where = f"{block.page}:{block.line}: {flag}"
                        if flag not in flags_for(args, known):
                            unknown.append(where)
                        elif flag in pending and (
                            f"{pending[flag]} {NOT_IMPLEMENTED}" not in block.text
                        ):
                            undisclosed.append(where)
    assert not unknown, "flags that greenserve does not have:\n" + "\n".join(unknown)
    assert not undisclosed, (
        "unimplemented gunicorn flags used without showing their warning in the same block:\n"
        + "\n".join(undisclosed)
    )


#: pages whose bare inline flags belong to other programs (wrk, py-spy), not greenserve
OTHER_PROGRAMS = {"benchmarks.md"}
#: pages about ``greenserve bench``, whose bare inline flags may also be its options
BENCH_PAGES = {"how-to/load-testing.md"}


def test_every_flag_in_inline_code_exists() -> None:
    """`greenserve --keep-alive 75`, and on most pages a bare `--keep-alive` or `-D/--daemon`
    in prose, must name real flags too."""
    known = known_flags()
    unknown = []
    for page in pages():
        text = re.sub(r"(?ms)^\s*(```+|~~~+).*?^\s*\1", "", page.read_text(encoding="utf-8"))
        valid = known | bench_flags() if rel(page) in BENCH_PAGES else known
        for span in re.findall(r"`([^`\n]+)`", text):
            if span.startswith("greenserve "):
                found = [f for a in greenserve_args(span) for f in flags_in(a)
                         if f not in flags_for(a, known)]
            elif re.match(r"^--?[A-Za-z]", span) and rel(page) not in OTHER_PROGRAMS:
                found = flags_in(re.split(r"[\s/]+", span)[:1] + span.split("/")[1:2])
                found = [f for f in found if f not in valid]
            else:
                continue
            unknown += [f"{rel(page)}: `{span}`" for f in found]
    assert not unknown, "inline code names flags that greenserve does not have:\n" + "\n".join(
        unknown)


def test_not_implemented_warnings_in_the_docs_are_still_true() -> None:
    """A page that shows "--x is accepted ... but not implemented yet" must be updated when
    --x gets implemented."""
    pending_names = {p.name for p in PENDING}
    pending = pending_flags()
    stale = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        for name in re.findall(r"(\S+)(?: \(in [^)]*\))? " + re.escape(NOT_IMPLEMENTED), text):
            if re.fullmatch(r"--?[a-z][\w-]*", name):
                ok = name in pending
            elif re.fullmatch(r"[a-z][a-z0-9_]*", name):
                ok = name in pending_names
            else:
                continue  # a placeholder such as "..."
            if not ok:
                stale.append(f"{rel(page)}: {name}")
    assert not stale, "these are implemented now; update the pages:\n" + "\n".join(stale)
