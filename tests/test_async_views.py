"""Awaiting parallel's AsyncExecution and strand's handles from async views.

The examples of docs/async.md run here as written (their URL pointed at a
local server), as files, driven through httpx's ASGI transport as a user's
test suite would.  The event-loop tests count ticks of a 10 ms ticker with
wide margins; nothing asserts a tight timing.
"""
import asyncio
import concurrent.futures
import importlib
import json
import os
import re
import sys
import threading
import time

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import _lateral
import parallel
import strand
from common_support import PATIENCE, LoopbackSite, wait_until
from strand_support import add, fail

pytestmark = pytest.mark.timeout(120)

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "docs", "async.md")
PRICES = {("BTC", "bitstamp"): 7800.2, ("BTC", "bitfinex"): 7821.89,
          ("BTC", "coinbase"): 7789.32, ("ETH", "bitfinex"): 290.15}


@pytest.fixture(autouse=True)
def no_parallel_leftovers():
    yield
    parallel.shutdown()


def run(coro_fn, *args):
    return asyncio.run(coro_fn(*args))


async def asgi_get(app, path):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path)


class Gate:
    """Calls that record their start and block until the gate opens."""

    def __init__(self):
        self.opened = threading.Event()
        self.started = []
        self.finished = []
        self._lock = threading.Lock()

    def call(self, x):
        with self._lock:
            self.started.append(x)
        self.opened.wait(PATIENCE)
        with self._lock:
            self.finished.append(x)
        return x


class Ticker:
    """A coroutine that ticks every 10 ms, noting the threads alive at each
    tick; ``sleep`` is asyncio's, trio's or anyio's."""

    def __init__(self, sleep=asyncio.sleep):
        self.ticks = []
        self._sleep = sleep

    async def run(self):
        while True:
            self.ticks.append({t.name for t in threading.enumerate()})
            await self._sleep(0.01)


async def until(predicate):
    """Await (without blocking the loop) until predicate() holds."""
    deadline = time.monotonic() + PATIENCE
    while not predicate():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.005)


# ---------------------------------------------------------------------------
# The core's hook: Batch.add_done_callback
# ---------------------------------------------------------------------------

def test_batch_done_callback_runs_once_in_the_finishing_thread():
    pool = _lateral.Pool(2, "cbtest")
    try:
        gate = Gate()
        batch = pool.map(gate.call, range(4))
        calls, called = [], threading.Event()

        def callback(b):
            calls.append((b, b.done, threading.current_thread().name))
            called.set()

        batch.add_done_callback(callback)
        assert not called.is_set()
        gate.opened.set()
        assert called.wait(PATIENCE)
        assert batch.wait(PATIENCE)
        assert len(calls) == 1
        finished_batch, was_done, thread_name = calls[0]
        assert finished_batch is batch and was_done
        assert thread_name.startswith("cbtest-")
        # Added to a finished batch: called at once, in the calling thread.
        batch.add_done_callback(callback)
        assert len(calls) == 2 and calls[1][2] == threading.current_thread().name
    finally:
        pool.close()


def test_batch_done_callback_runs_when_a_cancelled_batch_ends():
    pool = _lateral.Pool(2, "cbtest")
    try:
        gate = Gate()
        batch = pool.map(gate.call, range(10), tickets=2)
        called = threading.Event()
        batch.add_done_callback(lambda b: called.set())
        assert wait_until(lambda: len(gate.started) == 2)
        assert batch.cancel() == 8
        assert not called.is_set()  # two calls still run
        gate.opened.set()
        assert called.wait(PATIENCE)
        assert sorted(gate.finished) == [0, 1] and batch.done
    finally:
        pool.close()


def test_batch_done_callback_errors_are_reported_not_raised(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    pool = _lateral.Pool(1, "cbtest")
    try:
        batch = pool.map(abs, [-1])
        assert batch.wait(PATIENCE)
        later = []
        batch.add_done_callback(lambda b: 1 / 0)
        batch.add_done_callback(later.append)
        assert later == [batch]
        assert len(reported) == 1 and isinstance(reported[0].exc_value, ZeroDivisionError)
        with pytest.raises(TypeError, match="callable"):
            batch.add_done_callback("not callable")
    finally:
        pool.close()


# ---------------------------------------------------------------------------
# await AsyncExecution: the event loop keeps running
# ---------------------------------------------------------------------------

def sleep_200ms(x):
    time.sleep(0.2)
    return x * 10


def ticking_app(blocking):
    """A Starlette app whose view runs 3 calls of 200 ms, awaiting them (or
    blocking on parallel.par), and reports how many times a 10 ms ticker
    ticked meanwhile and which threads were alive."""
    async def view(request):
        ticker = Ticker()
        task = asyncio.create_task(ticker.run())
        ticks = ticker.ticks
        await until(lambda: ticks)
        before = len(ticks)
        calls = {"a": (sleep_200ms, 1), "b": (sleep_200ms, 2), "c": (sleep_200ms, 3)}
        if blocking:
            results = parallel.par(calls)
        else:
            results = await parallel.async_par(calls)
        during = ticks[before:]
        task.cancel()
        threads = set().union(*during) - ticks[0]
        return JSONResponse({"results": results, "ticks": len(during),
                             "new_threads": sorted(threads)})

    return Starlette(routes=[Route("/", view)])


def test_a_ticker_keeps_ticking_while_a_view_awaits_async_par():
    response = run(asgi_get, ticking_app(blocking=False), "/")
    body = response.json()
    assert response.status_code == 200
    assert body["results"] == {"a": 10, "b": 20, "c": 30}
    # ~20 ticks in 200 ms; 5 leaves a wide margin for a loaded machine.
    assert body["ticks"] >= 5, body
    # Nothing but parallel's own workers: no executor thread waits for them.
    assert all(name.startswith("parallel-") for name in body["new_threads"]), body


def test_the_blocking_form_stops_the_ticker_which_is_what_await_avoids():
    body = run(asgi_get, ticking_app(blocking=True), "/").json()
    assert body["results"] == {"a": 10, "b": 20, "c": 30}
    assert body["ticks"] == 0


# ---------------------------------------------------------------------------
# await AsyncExecution: results and errors are those of results()
# ---------------------------------------------------------------------------

def fail_on_odd(x):
    if x % 2:
        raise ValueError(f"odd: {x}")
    return x


def test_await_gives_the_object_results_gives():
    async def main():
        execution = parallel.async_map(sleep_200ms, [1, 2, 3])
        listed = await execution
        assert type(listed) is parallel.ListResult and listed == [10, 20, 30]
        assert execution.results() is listed and await execution is listed
        keyed = await parallel.async_par({"x": (abs, -4), "y": parallel.future(abs, -5)})
        assert type(keyed) is parallel.DictResult and keyed == {"x": 4, "y": 5}
        assert await parallel.async_map(abs, []) == []
    run(main)


def test_await_raises_the_first_error_in_input_order():
    async def main():
        execution = parallel.async_map(fail_on_odd, [0, 1, 2, 3])
        with pytest.raises(ValueError, match="odd: 1") as awaited:
            await execution
        with pytest.raises(ValueError) as read:
            execution.results()
        assert read.value is awaited.value
    run(main)


def test_await_in_silent_mode_gives_failed_tasks():
    async def main():
        results = await parallel.async_map(fail_on_odd, [0, 1, 2], silent=True)
        assert results.failures and results.succeeded == [0, 2]
        assert results[1] == parallel.FailedTask(params=(1,), kwargs={},
                                                 ex=ValueError("odd: 1"))
    run(main)


def test_await_raises_timeout_at_the_calls_deadline_and_cancels_the_rest():
    gate = Gate()

    async def main():
        execution = parallel.async_map(gate.call, range(6), max_workers=2, timeout=0.2)
        with pytest.raises(parallel.TimeoutException, match="calls not started were cancelled"):
            await execution
        with pytest.raises(parallel.TimeoutException):
            execution.results()

    try:
        run(main)
    finally:
        gate.opened.set()
    assert wait_until(lambda: len(gate.finished) == len(gate.started))
    assert len(gate.started) <= 2


@parallel.decorate(executor="process")
def decorated_negate(x):
    return -x


def test_await_on_processes_other_executors_and_decorated_functions():
    async def main():
        assert await parallel.process.async_map(abs, [-1, -2]) == [1, 2]
        with pytest.raises(ValueError, match="odd: 1"):
            await parallel.process.async_map(fail_on_odd, [0, 1])
        assert await decorated_negate.async_map([1, 2]) == [-1, -2]
        assert await decorated_negate.thread.async_map([3]) == [-3]
        with concurrent.futures.ThreadPoolExecutor(2) as executor:
            assert await parallel.async_map(sleep_200ms, [1, 2], executor=executor) == [10, 20]
    run(main)


# ---------------------------------------------------------------------------
# Cancelling the awaiting task cancels the calls not started
# ---------------------------------------------------------------------------

def check_cancelled(gate, execution):
    """The running calls finish; the rest never start."""
    gate.opened.set()
    assert wait_until(execution.done)
    with pytest.raises(concurrent.futures.CancelledError):
        execution.results()
    assert sorted(gate.finished) == sorted(gate.started)
    assert len(gate.started) <= 2


def test_wait_for_timeout_cancels_the_calls_not_started():
    gate = Gate()
    execution = None

    async def main():
        nonlocal execution
        execution = parallel.async_map(gate.call, range(10), max_workers=2)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(execution, timeout=0.1)

    try:
        run(main)
    finally:
        gate.opened.set()
    check_cancelled(gate, execution)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is new in 3.11")
def test_asyncio_timeout_cancels_the_calls_not_started():
    gate = Gate()
    execution = None

    async def main():
        nonlocal execution
        execution = parallel.async_par([(gate.call, i) for i in range(10)], max_workers=2)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await execution

    try:
        run(main)
    finally:
        gate.opened.set()
    check_cancelled(gate, execution)


def test_cancelling_the_awaiting_task_cancels_and_lets_running_calls_finish():
    gate = Gate()
    execution = parallel.async_map(gate.call, range(10), max_workers=2)

    async def main():
        awaiting = asyncio.Event()

        async def view():
            awaiting.set()  # the next line suspends this task in the await
            await execution

        task = asyncio.create_task(view())
        await awaiting.wait()
        await until(lambda: len(gate.started) == 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        run(main)
        assert gate.finished == []  # cancelled while they ran: they still run
    finally:
        gate.opened.set()
    check_cancelled(gate, execution)


def test_await_needs_a_running_event_loop():
    gate = Gate()
    execution = parallel.async_map(gate.call, [1])
    try:
        with pytest.raises(RuntimeError, match="event loop"):
            execution.__await__().send(None)
    finally:
        gate.opened.set()
    assert execution.results(PATIENCE) == [1]


# ---------------------------------------------------------------------------
# trio and anyio
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_awaits_on_either_backend(backend):
    async def main():
        ticker = Ticker(anyio.sleep)
        async with anyio.create_task_group() as group:
            group.start_soon(ticker.run)
            before = len(ticker.ticks)
            results = await parallel.async_map(sleep_200ms, [1, 2, 3])
            during = len(ticker.ticks) - before
            group.cancel_scope.cancel()
        assert results == [10, 20, 30] and during >= 5
        with pytest.raises(ValueError, match="odd: 1"):
            await parallel.async_map(fail_on_odd, [0, 1])

    anyio.run(main, backend=backend)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_cancel_scope_cancels_the_calls_not_started(backend):
    gate = Gate()
    execution = parallel.async_map(gate.call, range(10), max_workers=2)

    async def main():
        with anyio.move_on_after(0.1):
            await execution

    try:
        anyio.run(main, backend=backend)
    finally:
        gate.opened.set()
    check_cancelled(gate, execution)


# ---------------------------------------------------------------------------
# docs/async.md, run as written
# ---------------------------------------------------------------------------

class ExchangeSite(LoopbackSite):
    """``GET /price/<crypto>/<exchange>``: ``{"price": ...}`` from PRICES, or
    404; answers after ``delay`` seconds."""

    thread_name = "exchange-site"
    delay = 0.0

    def respond(self, handler):
        time.sleep(self.delay)
        match = re.fullmatch(r"/price/(\w+)/(\w+)", handler.path)
        price = PRICES.get(match.groups()) if match else None
        body = json.dumps({"price": price} if price is not None else {}).encode()
        handler.send_response(200 if price is not None else 404)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def doc_files():
    """{path: code} of the blocks of docs/async.md that start with '# <file>.py'."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    files = {}
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        first = block.splitlines()[0]
        match = re.fullmatch(r"# (\S+\.py)", first.strip())
        if match:
            files[match.group(1)] = block
    return files


@pytest.fixture(scope="module")
def site():
    site = ExchangeSite().start()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def doc_examples(tmp_path_factory, site):
    """The documents' files written out and importable; exchanges.py points
    at the local site."""
    root = tmp_path_factory.mktemp("async_doc")
    files = doc_files()
    assert {"exchanges.py", "prices_app.py", "prices/views.py", "prices/urls.py",
            "reports_app.py"} <= set(files)
    for name, code in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    (root / "prices" / "__init__.py").write_text("")
    names = ("exchanges", "prices_app", "prices", "prices.views", "prices.urls", "reports_app")
    sys.path.insert(0, str(root))
    try:
        exchanges = importlib.import_module("exchanges")
        exchanges.EXCHANGES_API = site.base
        yield root
    finally:
        sys.path.remove(str(root))
        for name in names:
            sys.modules.pop(name, None)


BTC = {"crypto": "BTC", "prices": {"bitstamp": 7800.2, "bitfinex": 7821.89,
                                   "coinbase": 7789.32}, "unavailable": []}
ETH = {"crypto": "ETH", "prices": {"bitfinex": 290.15},
       "unavailable": ["bitstamp", "coinbase"]}


def test_doc_starlette_view(doc_examples):
    app = importlib.import_module("prices_app").app
    for crypto, expected in (("BTC", BTC), ("ETH", ETH)):
        response = run(asgi_get, app, f"/prices/{crypto}")
        assert response.status_code == 200 and response.json() == expected


def test_doc_starlette_view_answers_504_when_every_exchange_is_late(doc_examples, site):
    app = importlib.import_module("prices_app").app
    site.delay = 3.0  # the view's timeout is 2 s
    try:
        response = run(asgi_get, app, "/prices/BTC")
    finally:
        site.delay = 0.0
    assert response.status_code == 504
    assert response.json() == {"error": "no exchange gave a price in time"}


def test_doc_django_async_view(doc_examples):
    from django.conf import settings
    if not settings.configured:
        settings.configure(ROOT_URLCONF="prices.urls", ALLOWED_HOSTS=["testserver"],
                           SECRET_KEY="only-for-tests", INSTALLED_APPS=[], MIDDLEWARE=[])
    assert settings.ROOT_URLCONF == "prices.urls"
    from django.core.asgi import get_asgi_application
    app = get_asgi_application()
    for crypto, expected in (("BTC", BTC), ("ETH", ETH)):
        response = run(asgi_get, app, f"/prices/{crypto}")
        assert response.status_code == 200, response.text
        assert response.json() == expected


@pytest.fixture
def reports_app(doc_examples, monkeypatch):
    monkeypatch.chdir(doc_examples)  # its store is ./reports.sqlite3
    module = importlib.import_module("reports_app")
    yield module
    sys.modules.pop("reports_app", None)


def test_doc_report_view_waits_for_a_reader(reports_app, doc_examples):
    reader = strand.StoreTaskReader(str(doc_examples / "reports.sqlite3"))
    reader.listen()
    try:
        response = run(asgi_get, reports_app.app, "/reports/2024-05")
    finally:
        reader.stop()
    assert response.status_code == 200
    assert response.json() == {"month": "2024-05", "orders": 1204}


def test_doc_report_view_answers_202_without_a_reader(reports_app):
    response = run(asgi_get, reports_app.app, "/reports/2024-06")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "new"
    task = reports_app.reports.store[body["task"]]
    assert list(task["args"]) == ["2024-06"] and task["status"] == "new"


# ---------------------------------------------------------------------------
# strand handles
# ---------------------------------------------------------------------------

def test_thread_taskrunner_handle_awaits_without_stopping_the_loop():
    async def main():
        ticker = Ticker()
        task = asyncio.create_task(ticker.run())
        await until(lambda: ticker.ticks)
        before = len(ticker.ticks)
        assert await strand.ThreadTaskrunner(sleep_200ms)(4) == 40
        assert len(ticker.ticks) - before >= 5
        task.cancel()
        handle = strand.ThreadTaskrunner(fail)("broken")
        with pytest.raises(ValueError, match="broken") as awaited:
            await handle
        assert handle.exception() is awaited.value
    run(main)


def test_cancelling_an_awaited_thread_handle_skips_a_call_not_started():
    pool = strand.thread_pool()
    gate = Gate()
    blockers = [strand.ThreadTaskrunner(gate.call)(i) for i in range(pool.max_workers)]
    ran = []
    handle = strand.ThreadTaskrunner(ran.append)("late")

    async def main():
        await until(lambda: len(gate.started) == pool.max_workers)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(handle, timeout=0.05)

    try:
        run(main)
    finally:
        gate.opened.set()
    assert all(blocker.result(PATIENCE) is not None for blocker in blockers)
    assert handle.cancelled() and ran == []


def test_process_taskrunner_handle_awaits():
    async def main():
        assert await strand.MultiprocessTaskrunner(add)(2, b=3) == 5
        with pytest.raises(ValueError, match="broken"):
            await strand.MultiprocessTaskrunner(fail)("broken")
    run(main)


def test_store_task_awaits_the_reader(tmp_path):
    store = strand.SqliteStore(tmp_path / "tasks.sqlite3")

    async def main():
        writer = strand.StoreTaskWriter(add, store, read_store=store)
        try:
            assert await writer(2, b=5) == 7
            with pytest.raises(strand.StoreTaskError):
                await strand.StoreTaskWriter(fail, store)("broken")
        finally:
            writer.close()
    run(main)
