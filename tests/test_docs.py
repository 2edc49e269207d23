"""The documentation: the Python examples of docs/*.md and README.md run, the
site builds without a warning, and every public name is documented.

How the examples run
--------------------
Every fenced block whose info string starts with ``python`` (or ``py``,
``python3``) is an example; other fences (``sh``, ``text``, ``pycon``...) are
not run.

* A block is a program of its own: it is written to a file in a fresh
  directory, which is also the working directory, and run with
  ``python <file>`` in a subprocess, with a timeout (EXAMPLE_TIMEOUT).  A
  block with top-level ``await`` runs under ``asyncio.run`` instead.
* The names a page's examples take as given (``fetch``, ``urls``,
  ``extract``...) are defined by ``GIVEN[page]`` below, which runs first in
  every program of that page.  A new example should rather be complete.
* Example URLs -- any ``http(s)://...example.com`` -- point at a local HTTP
  server (DocsSite: every GET answers ``{"path": ..., "price": ...}`` as
  JSON) instead; ``GIVEN`` code finds its URL in ``$DOCS_SITE``.
* A block whose first line is ``# <path>.py`` is a file of an example
  application: all such blocks of a page are written under their paths
  (a directory becomes a package), and each one runs there as
  ``python -m <module>``.  (tests/test_async_views.py serves the async.md
  applications.)

An HTML comment just above a block's opening fence (invisible on the
rendered page) changes that::

    <!-- docs-test: continue -->
        The block continues the page's previous example: they run together,
        in order, as one program (any number of blocks can chain).

    <!-- docs-test: skip: REASON -->
        The block does not run; REASON is required and is reported as the
        test's skip reason.  For a block that cannot run standalone (it
        needs a real web server, network or credentials).  A continued
        block continues the last block that runs.

The Sphinx build and the public-name checks need sphinx and myst-parser
(the ``test`` extra has them); without them those tests are skipped.
"""
import ast
import dataclasses
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from common_support import LoopbackSite

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]
PACKAGES = ("pylateral", "parallel", "strand")

#: Seconds one example program may run.
EXAMPLE_TIMEOUT = 90

pytestmark = pytest.mark.timeout(300)

#: page (relative to the repository) -> the code its examples take as given.
GIVEN = {
    "README.md": """
        import os
        URLS = [f"{os.environ['DOCS_SITE']}/page/{i}" for i in range(5)]
    """,
    "docs/pylateral.md": """
        import json, os, threading, urllib.request
        import pylateral

        ids = range(20)
        loaded, loaded_lock = [], threading.Lock()

        def extract(record_id):
            with urllib.request.urlopen(f"{os.environ['DOCS_SITE']}/records/{record_id}") as r:
                return json.load(r)

        def insert(row):
            with loaded_lock:
                loaded.append(row)

        @pylateral.task(has_return_value=True)
        def square(i):
            return i * i
    """,
    "docs/parallel.md": """
        import json, os, urllib.request

        def fetch(url):
            with urllib.request.urlopen(url) as r:
                return json.load(r)

        def price(crypto):
            return fetch(f"{os.environ['DOCS_SITE']}/price/{crypto}")["price"]

        url1, url2 = (f"{os.environ['DOCS_SITE']}/site/{i}" for i in (1, 2))
        urls = [url1, url2]
    """,
    "docs/async.md": """
        import json, os, urllib.request
        import parallel

        def get_price(crypto):
            with urllib.request.urlopen(f"{os.environ['DOCS_SITE']}/price/{crypto}") as r:
                return json.load(r)["price"]
    """,
    "docs/strand.md": """
        from strand import StoreTaskReader
        task_store = {}
    """,
}

MARKER = re.compile(r"<!--\s*docs-test:(?P<body>.*?)-->", re.S)
EXAMPLE_URL = re.compile(r"https?://(?:[\w-]+\.)*example\.com")
FILE_HEADER = re.compile(r"#\s*(\S+)\.py\s*")
PYTHON_INFOS = {"python", "py", "python3"}

# Runs a program with top-level await: compile it so, run its coroutine.
AWAIT_DRIVER = """
import ast, asyncio, sys
path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    code = compile(f.read(), path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__", "__file__": path})
if result is not None:
    asyncio.run(result)
"""


# ---------------------------------------------------------------------------
# Reading the examples
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Block:
    page: str       # relative to the repository, e.g. "docs/strand.md"
    line: int       # 1-based line of the opening fence
    code: str = dataclasses.field(repr=False)
    marker: str     # "", "continue" or "skip"
    reason: str = ""

    @property
    def where(self):
        return f"{self.page}:{self.line}"


@dataclasses.dataclass
class Example:
    """What one test runs: a program (one block, or a block and those that
    continue it), a file of an application, a skipped block, or a block
    whose marker is wrong (the test fails with ``problem``)."""
    kind: str       # "program", "file", "skip" or "bad"
    blocks: list
    problem: str = ""

    @property
    def id(self):
        first = self.blocks[0]
        return first.where + (f"+{len(self.blocks) - 1}" if len(self.blocks) > 1 else "")


def page_blocks(path, root=ROOT):
    """The Python blocks of one Markdown page, with their markers."""
    page = path.relative_to(root).as_posix()
    tokens = MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))
    blocks = []
    for i, token in enumerate(tokens):
        info = token.info.split()
        if token.type != "fence" or not info or info[0].lower() not in PYTHON_INFOS:
            continue
        marker, reason = marker_above(tokens, i)
        blocks.append(Block(page, token.map[0] + 1, token.content, marker, reason))
    return blocks


def marker_above(tokens, index):
    """(marker, reason) of the ``docs-test`` comment just above the fence at
    ``index``: ("", "") when there is none, ("bad", why) when it is wrong."""
    previous = tokens[index - 1] if index else None
    if previous is None or previous.type != "html_block":
        return "", ""
    match = MARKER.search(previous.content)
    if not match:
        return "", ""
    verb, _, reason = (part.strip() for part in match.group("body").partition(":"))
    if verb == "continue" and not reason:
        return "continue", ""
    if verb == "skip" and reason:
        return "skip", " ".join(reason.split())
    return "bad", (f"{previous.content.strip()!r}: expected "
                   "'<!-- docs-test: continue -->' or '<!-- docs-test: skip: REASON -->'")


def file_name(block):
    """``pkg/mod.py`` when the block is a file of an application, else None."""
    first = block.code.lstrip("\n").splitlines()[0] if block.code.strip() else ""
    match = FILE_HEADER.fullmatch(first)
    return match.group(1) + ".py" if match else None


def examples_of(blocks):
    """Group one page's blocks into the examples the tests run."""
    examples = []
    last_program = None
    for block in blocks:
        if block.marker == "bad":
            examples.append(Example("bad", [block], block.reason))
        elif block.marker == "skip":
            examples.append(Example("skip", [block]))
        elif block.marker == "continue":
            if last_program is None:
                examples.append(Example("bad", [block], "continues no earlier runnable block"))
            else:
                last_program.blocks.append(block)
        elif file_name(block):
            examples.append(Example("file", [block]))
        else:
            last_program = Example("program", [block])
            examples.append(last_program)
    for example in examples:
        if example.kind == "program" and any(file_name(b) for b in example.blocks):
            example.kind, example.problem = "bad", "a '# <file>.py' block cannot be continued"
    return examples


def all_examples():
    return [example for page in PAGES for example in examples_of(page_blocks(page))]


EXAMPLES = all_examples()


# ---------------------------------------------------------------------------
# Running them
# ---------------------------------------------------------------------------

class DocsSite(LoopbackSite):
    """Stands in for the examples' web sites: every GET answers 200 with
    ``{"path": <path>, "price": 100.0}``."""

    thread_name = "docs-site"

    def respond(self, handler):
        body = json.dumps({"path": handler.path, "price": 100.0}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture(scope="module")
def site():
    site = DocsSite().start()
    yield site
    site.stop()


def local_urls(code, site):
    return EXAMPLE_URL.sub(site.base, code)


def program_text(example, site):
    """The program of an example: its page's GIVEN code, then its blocks,
    each after a comment saying where it comes from."""
    page = example.blocks[0].page
    parts = [f"# GIVEN[{page!r}] (tests/test_docs.py)\n" + textwrap.dedent(GIVEN.get(page, ""))]
    parts += [f"# --- {block.where}\n{local_urls(block.code, site)}" for block in example.blocks]
    return "\n".join(parts)


def has_top_level_await(text, path):
    try:
        compile(text, path, "exec")
    except SyntaxError:
        compile(text, path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)  # raises if invalid
        return True
    return False


def run_python(args, cwd, site):
    env = {**os.environ, "DOCS_SITE": site.base}
    try:
        return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=EXAMPLE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"still running after {EXAMPLE_TIMEOUT} s; output so far:\n"
                    f"{exc.stdout or ''}{exc.stderr or ''}")


def run_program(example, site, directory):
    path = directory / f"example_{example.blocks[0].line}.py"
    text = program_text(example, site)
    path.write_text(text, encoding="utf-8")
    if has_top_level_await(text, str(path)):
        return run_python(["-c", AWAIT_DRIVER, str(path)], directory, site)
    return run_python([str(path)], directory, site)


def write_application(page, site, directory):
    """Write every '# <file>.py' block of ``page`` under ``directory``."""
    for example in examples_of(page_blocks(ROOT / page)):
        for block in example.blocks:
            name = file_name(block)
            if example.kind == "file" and name:
                path = directory / name
                path.parent.mkdir(parents=True, exist_ok=True)
                for package in path.relative_to(directory).parents:
                    if package != Path("."):
                        (directory / package / "__init__.py").touch()
                path.write_text(local_urls(block.code, site), encoding="utf-8")


def run_file(example, site, directory):
    block = example.blocks[0]
    write_application(block.page, site, directory)
    module = file_name(block)[:-3].replace("/", ".")
    return run_python(["-m", module], directory, site)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.id)
def test_doc_example_runs(example, site, tmp_path):
    if example.kind == "skip":
        pytest.skip(f"{example.id}: docs-test: skip: {example.blocks[0].reason}")
    if example.kind == "bad":
        pytest.fail(f"{example.id}: {example.problem}")
    run = run_file if example.kind == "file" else run_program
    result = run(example, site, tmp_path)
    assert result.returncode == 0, (
        f"the example at {example.id} failed (exit status {result.returncode}):\n"
        f"{result.stdout[-3000:]}{result.stderr[-6000:]}")


def test_every_python_fence_is_an_example():
    """The reading must not silently drop an example: each page has as many
    as it has ```python fences (counted by a plain pattern here)."""
    fence = re.compile(r"^[ \t]*(?:```|~~~)[ \t]*(?:python3?|py)(?:[ \t][^\n]*)?$", re.M | re.I)
    counts = {page.relative_to(ROOT).as_posix(): len(page_blocks(page)) for page in PAGES}
    assert counts == {page.relative_to(ROOT).as_posix(): len(fence.findall(page.read_text()))
                      for page in PAGES}
    assert all(counts[page] for page in ("README.md", "docs/pylateral.md", "docs/parallel.md",
                                         "docs/async.md", "docs/strand.md")), counts


def test_markers_are_read(tmp_path):
    """The convention of the docstring above, on a page of its own."""
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent("""\
        ```python
        a = 1
        ```

        <!-- docs-test: continue -->
        ```python
        assert a == 1
        ```

        <!-- docs-test: skip: needs a real Redis server -->
        ```py
        import redis
        ```

        <!-- docs-test: skipp -->
        ```python
        pass
        ```

        ```sh
        echo not python
        ```

        ```python
        # app/views.py
        VIEW = 1
        ```
        """))
    examples = examples_of(page_blocks(page, root=tmp_path))
    assert [(e.kind, [b.line for b in e.blocks]) for e in examples] == [
        ("program", [1, 6]), ("skip", [11]), ("bad", [16]), ("file", [24])]
    assert examples[1].blocks[0].reason == "needs a real Redis server"
    assert file_name(examples[3].blocks[0]) == "app/views.py"


# ---------------------------------------------------------------------------
# The site and the API reference
# ---------------------------------------------------------------------------

def public_names(module):
    """``__all__``, else the public names the module itself defines."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__]


def own_doc(obj):
    """The docstring of a class, function or module itself (a class does not
    inherit one); None for other objects (data: see docs/conf.py)."""
    if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
        return (obj.__doc__ or "").strip() or "missing"
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_class_and_function_has_a_docstring(package):
    module = importlib.import_module(package)
    missing = [name for name in public_names(module) if own_doc(getattr(module, name)) == "missing"]
    assert not missing, f"{package}: no docstring: {missing}"


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    """The site, built as CI builds it (warnings are errors)."""
    for name in ("sphinx", "myst_parser"):
        pytest.importorskip(name, reason=f"{name} is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(DOCS), str(out)], capture_output=True, text=True, timeout=600)
    return build, out


def test_site_builds_without_warnings(built_site):
    build, out = built_site
    assert build.returncode == 0, build.stdout + build.stderr
    assert "WARNING" not in build.stderr, build.stderr
    for page in [*(p.stem for p in DOCS.glob("*.md")), "api/pylateral", "api/parallel", "api/strand"]:
        assert (out / f"{page}.html").is_file(), page


def inventory(path):
    """{name: role} of the Python objects in a Sphinx objects.inv."""
    with open(path, "rb") as f:
        for _ in range(4):  # the plain-text header
            f.readline()
        lines = zlib.decompress(f.read()).decode().splitlines()
    entries = {}
    for line in lines:
        name, role = line.split(" ", 2)[:2]
        if role.startswith("py:"):
            entries[name] = role
    return entries


def test_every_public_name_is_in_the_api_reference(built_site):
    """Each public name of the packages, and of every module the reference
    documents, is on an API page: as itself, or as the same object under a
    documented module (a re-export).  autodoc leaves out a name without a
    docstring (or a constant without a ``#:`` comment), so this also finds
    those."""
    build, out = built_site
    assert (out / "objects.inv").is_file(), build.stdout + build.stderr
    documented = inventory(out / "objects.inv")
    modules = sorted(name for name, role in documented.items() if role == "py:module")
    assert set(PACKAGES) <= set(modules)

    def in_reference(module, name):
        value = getattr(module, name)
        return f"{module.__name__}.{name}" in documented or any(
            f"{other}.{name}" in documented
            and getattr(importlib.import_module(other), name, None) is value
            for other in modules)

    missing = [f"{modname}.{name}" for modname in modules
               for name in public_names(importlib.import_module(modname))
               if not in_reference(importlib.import_module(modname), name)]
    assert not missing, f"not in docs/api/ (or without a docstring): {missing}"
