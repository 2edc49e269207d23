"""Property tests (hypothesis): pylateral and parallel against serial models.

pylateral: random forests of nested tasks, with random return values and
random failures, run on a threaded pool, on a one-thread pool and on a
disabled (inline) pool; every outcome is checked against a serial
interpreter of the same forest.  parallel: ``map`` / ``par`` over random
parameter shapes give what a plain loop over the documented calls gives, the
first error in input order is the one raised, and ``silent=True`` keeps every
item in its place.
"""
import collections
import os
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import parallel
import pylateral
from common_support import scaled
from parallel_support import CustomError, describe
from pylateral_support import pylateral_threads

pytestmark = pytest.mark.timeout(180)

#: Most properties: ~100 examples at scale 1.
MANY = settings(max_examples=scaled(100), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
#: Properties split by pytest.mark.parametrize: ~50 examples per variant.
PER_VARIANT = settings(max_examples=scaled(50), deadline=None,
                       suppress_health_check=[HealthCheck.too_slow])
#: The process executor costs a few ms per call: a handful of examples.
FEW = settings(max_examples=scaled(8), deadline=None,
               suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def plain_environment():
    """No PYLATERAL_* setting of the caller leaks into the properties; the
    process pools opened here are closed at the end."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYLATERAL_WORKERS", raising=False)
        patch.delenv("PYLATERAL_ENABLED", raising=False)
        yield
    parallel.shutdown()


# ======================================================================
# pylateral: forests of nested tasks
# ======================================================================

RAISE = "raise"            # the task raises NodeFailure(node.id)
UNEXPECTED = "unexpected"  # a task without has_return_value returns a value


class NodeFailure(Exception):
    """Raised by the task of a failing node; ``args == (node_id,)``."""


class Node:
    """One task call of a generated forest and what its body does: call its
    children in order (stopping at ``fail_at`` when it raises), then fail,
    or return ``value`` (collected only when ``returns``)."""

    __slots__ = ("id", "parent", "children", "returns", "value", "failure", "fail_at")

    def __init__(self, node_id, parent):
        self.id = node_id
        self.parent = parent
        self.children = []
        self.returns = False
        self.value = None
        self.failure = None
        self.fail_at = 0

    def spawned(self):
        """The children this task calls: those before its ``raise``, or all."""
        if self.failure == RAISE:
            return self.children[:self.fail_at]
        return self.children

    def __repr__(self):
        kind = f"ret={self.value!r}" if self.returns else "plain"
        if self.failure == RAISE:
            kind += f", raise@{self.fail_at}"
        elif self.failure == UNEXPECTED:
            kind += ", returns-unexpectedly"
        kids = f"[{', '.join(map(repr, self.children))}]" if self.children else ""
        return f"n{self.id}({kind}){kids}"


class Forest:
    """The root calls (made by the thread that opened the pool) and all nodes."""

    def __init__(self, roots, nodes):
        self.roots = roots
        self.nodes = nodes

    def reachable(self):
        """The nodes whose task is called at all when nothing is interrupted."""
        found, todo = [], list(self.roots)
        while todo:
            node = todo.pop()
            found.append(node)
            todo.extend(node.spawned())
        return found

    def __repr__(self):
        return f"Forest({self.roots!r})"


def run_node(node, log):
    """The body of every generated task (see :class:`Node`)."""
    log.append(node.id)  # list.append is atomic: no lock a TaskCancelled could strand
    for index, child in enumerate(node.children):
        if node.failure == RAISE and index == node.fail_at:
            raise NodeFailure(node.id)
        call_node(child, log)
    if node.failure == RAISE:
        raise NodeFailure(node.id)
    if node.failure == UNEXPECTED:
        return ("unexpected", node.id)
    return node.value if node.returns else None


collecting_task = pylateral.task(has_return_value=True)(run_node)
plain_task = pylateral.task(run_node)


def call_node(node, log):
    """Call ``node``'s task (queued in a pool, at once without one)."""
    (collecting_task if node.returns else plain_task)(node, log)


#: Hashable return values, None included (it is collected like any other).
VALUES = st.one_of(st.none(), st.integers(-3, 3), st.text("xy", max_size=2),
                   st.tuples(st.integers(0, 2), st.booleans()))

SHAPES = st.recursive(st.just(()), lambda kids: st.lists(kids, min_size=1, max_size=3).map(tuple),
                      max_leaves=10)


@st.composite
def forests(draw, failures=(0, 0), tagged=False):
    """A Forest with between ``failures[0]`` and ``failures[1]`` failing
    nodes.  ``tagged``: every value is ``(node_id, random value)``, so that a
    collected value names the task that returned it."""
    low, high = failures
    shapes = draw(st.lists(SHAPES, min_size=max(1, low), max_size=4))
    nodes = []

    def build(shape, parent):
        node = Node(len(nodes), parent)
        nodes.append(node)
        node.children = [build(sub, node) for sub in shape]
        return node

    roots = [build(shape, None) for shape in shapes]
    for node in nodes:
        node.returns = draw(st.booleans())
        value = draw(VALUES)
        node.value = (node.id, value) if tagged else value
    if high:
        failing = draw(st.sets(st.sampled_from(range(len(nodes))),
                               min_size=low, max_size=min(high, len(nodes))))
        for node_id in sorted(failing):
            node = nodes[node_id]
            node.failure = draw(st.sampled_from([RAISE] if node.returns else [RAISE, UNEXPECTED]))
            node.fail_at = (draw(st.integers(0, len(node.children)))
                            if node.failure == RAISE else len(node.children))
    return Forest(roots, nodes)


class _ModelFailure(Exception):
    """A failure inside the serial model, carrying its node."""

    def __init__(self, node):
        super().__init__(node)
        self.node = node


def serial_model(forest):
    """Interpret ``forest`` serially, depth first, as plain calls do: each
    call runs at once and a failure propagates through its callers and stops
    everything.  Returns (values collected, ids started in order, failing
    node or None)."""
    values, started = [], []

    def run(node):
        started.append(node.id)
        for child in node.spawned():
            run(child)
        if node.failure:
            raise _ModelFailure(node)
        if node.returns:
            values.append(node.value)

    try:
        for root in forest.roots:
            run(root)
    except _ModelFailure as failure:
        return values, started, failure.node
    return values, started, None


def run_forest(forest, **pool_options):
    """Run ``forest``'s roots from this thread in a fresh pool.
    Returns (pool, ids of the started tasks in order, exception raised or None)."""
    log, raised = [], None
    try:
        with pylateral.task_pool(**pool_options) as pool:
            for root in forest.roots:
                call_node(root, log)
    except (NodeFailure, pylateral.UnexpectedReturnValueError) as exc:
        raised = exc
    assert pylateral_threads() == [], "pool threads outlived the with block"
    assert pylateral.get_current_task_pool() is None
    return pool, log, raised


def is_failure_of(exc, node):
    """Whether ``exc`` is the exception ``node``'s task fails with."""
    if node.failure == RAISE:
        return type(exc) is NodeFailure and exc.args == (node.id,)
    return type(exc) is pylateral.UnexpectedReturnValueError


def assert_log_is_a_spawn_order(forest, log):
    """Every task started at most once, and only after its parent called it."""
    position = {}
    for index, node_id in enumerate(log):
        assert node_id not in position, f"task n{node_id} ran twice"
        position[node_id] = index
        node = forest.nodes[node_id]
        if node.parent is not None:
            assert node.parent.id in position, f"n{node_id} ran before its parent"
            assert node in node.parent.spawned(), f"n{node_id} ran but was never called"


@MANY
@given(forest=forests(), workers=st.integers(1, 6))
def test_forest_without_failures_collects_exactly_the_serial_values(forest, workers):
    values, started, failed = serial_model(forest)
    assert failed is None
    pool, log, raised = run_forest(forest, max_workers=workers)
    assert raised is None
    assert pool.errors == []
    assert sorted(log) == sorted(started), "every task runs exactly once"
    assert_log_is_a_spawn_order(forest, log)
    assert collections.Counter(pool.return_values()) == collections.Counter(values)
    assert collections.Counter(pool.results) == collections.Counter(values)


@pytest.mark.parametrize("failures", [(1, 1), (2, 5)], ids=["one-failure", "several-failures"])
@PER_VARIANT
@given(data=st.data(), workers=st.integers(2, 6))
def test_forest_with_failures_on_threads_raises_one_of_its_failures(failures, data, workers):
    """With several threads, which failing task fails first is a race: the
    error raised must be the failure of *some* task that was called, it must
    be ``pool.errors[0]``, every recorded error belongs to a distinct called
    failing task, and no value is invented or collected twice."""
    forest = data.draw(forests(failures, tagged=True), label="forest")
    reachable = forest.reachable()
    candidates = [node for node in reachable if node.failure]
    pool, log, raised = run_forest(forest, max_workers=workers)
    assert_log_is_a_spawn_order(forest, log)
    collected = pool.return_values()
    if not candidates:  # the failing tasks are never called: an ordinary run
        assert raised is None and pool.errors == []
        expected = [node.value for node in reachable if node.returns]
        assert collections.Counter(collected) == collections.Counter(expected)
        return
    assert raised is not None, "a called task fails, so leaving the pool must raise"
    assert raised is pool.errors[0], "the error raised is the first one recorded"
    assert any(is_failure_of(raised, node) and node.id in log for node in candidates)
    failed_ids = [exc.args[0] for exc in pool.errors if type(exc) is NodeFailure]
    unexpected = [exc for exc in pool.errors if type(exc) is pylateral.UnexpectedReturnValueError]
    assert len(failed_ids) + len(unexpected) == len(pool.errors), f"foreign errors: {pool.errors!r}"
    assert len(set(failed_ids)) == len(failed_ids), "a failure was recorded twice"
    assert all(forest.nodes[i] in candidates and i in log for i in failed_ids)
    assert len(unexpected) <= sum(1 for n in candidates if n.failure == UNEXPECTED and n.id in log)
    collected_ids = [value[0] for value in collected]
    assert len(set(collected_ids)) == len(collected_ids), "a value was collected twice"
    for node_id, value in zip(collected_ids, collected):
        node = forest.nodes[node_id]
        assert node.returns and not node.failure and node_id in log and value == node.value


def replay_single_thread(forest, log):
    """The serial model of a one-thread pool, taking the order in which the
    tasks started from ``log``: each start must be of a task already called
    and not yet run, nothing may start after the first failure (queued tasks
    are dropped), and without a failure every called task must have run.
    Returns (values collected, failing node or None)."""
    callable_ids = {root.id for root in forest.roots}
    values, failed = [], None
    for node_id in log:
        assert failed is None, f"n{node_id} started after n{failed.id} failed"
        assert node_id in callable_ids, f"n{node_id} started without being called, or twice"
        callable_ids.discard(node_id)
        node = forest.nodes[node_id]
        callable_ids.update(child.id for child in node.spawned())
        if node.failure:
            failed = node
        elif node.returns:
            values.append(node.value)
    if failed is None:
        assert callable_ids == set(), f"called but never run: {sorted(callable_ids)}"
    return values, failed


@pytest.mark.parametrize("failures", [(0, 0), (1, 1), (2, 5)],
                         ids=["no-failure", "one-failure", "several-failures"])
@PER_VARIANT
@given(data=st.data())
def test_forest_on_one_thread_matches_the_replayed_serial_model_exactly(failures, data):
    """One worker runs one task at a time, so the run is serial: replaying
    the observed start order through the model pins the exact values and the
    exact first error, whatever order the pool chose."""
    forest = data.draw(forests(failures), label="forest")
    pool, log, raised = run_forest(forest, max_workers=1)
    values, failed = replay_single_thread(forest, log)
    assert collections.Counter(pool.return_values()) == collections.Counter(values)
    if failed is None:
        assert raised is None and pool.errors == []
    else:
        assert raised is not None and is_failure_of(raised, failed), (raised, failed)
        assert pool.errors == [raised], "one thread: nothing ran after the first failure"


@pytest.mark.parametrize("failures", [(0, 0), (1, 1), (2, 5)],
                         ids=["no-failure", "one-failure", "several-failures"])
@PER_VARIANT
@given(data=st.data())
def test_disabled_pool_runs_the_forest_exactly_like_the_serial_model(failures, data):
    """PYLATERAL_ENABLED=false: every task runs at once in the calling thread
    and raises at the call, so the run is the serial model's, step by step."""
    forest = data.draw(forests(failures), label="forest")
    values, started, failed = serial_model(forest)
    with mock.patch.dict(os.environ, {"PYLATERAL_ENABLED": "false"}):
        pool, log, raised = run_forest(forest)
    assert pool.enabled is False
    assert log == started
    assert collections.Counter(pool.return_values()) == collections.Counter(values)
    if failed is None:
        assert raised is None
    else:
        assert raised is not None and is_failure_of(raised, failed), (raised, failed)


# ======================================================================
# parallel: parameter shapes against a plain loop
# ======================================================================

Point = collections.namedtuple("Point", "x y")

#: Values that are one positional argument whatever the unpacking rules
#: (a namedtuple is a tuple subclass, a frozenset no sequence: one argument too).
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-9, 9), st.text("ab", max_size=2),
                    st.frozensets(st.integers(0, 3), max_size=2),
                    st.builds(Point, st.integers(0, 3), st.integers(0, 3)))
NAMES = st.sampled_from(["a", "b", "c", "db_table"])
KWARGS = st.dictionaries(NAMES, SCALARS, max_size=3)
#: Any positional value, dicts and tuples included (only parallel.arg and
#: futures can pass those as they are).
ANY_VALUE = st.one_of(SCALARS, st.dictionaries(NAMES, SCALARS, max_size=2),
                      st.tuples(SCALARS, SCALARS), st.lists(SCALARS, max_size=2))
EXTRAS = st.one_of(st.none(), st.dictionaries(NAMES, SCALARS, max_size=2))
WORKERS = st.one_of(st.none(), st.integers(1, 4))
SCALAR_ARGS = st.lists(SCALARS, max_size=3).map(tuple)
ANY_ARGS = st.lists(ANY_VALUE, max_size=3).map(tuple)


def describe_other(*args, **kwargs):
    """A second function for par: tags its echo of the call."""
    return ("other",) + describe(*args, **kwargs)


@parallel.decorate
def decorated_describe(*args, **kwargs):
    """describe(), decorated at module level (its .future pickles by name)."""
    return describe(*args, **kwargs)


@parallel.decorate
def decorated_other(*args, **kwargs):
    """describe_other(), decorated at module level."""
    return describe_other(*args, **kwargs)


PLAIN = {decorated_describe: describe, decorated_other: describe_other}


@st.composite
def map_parameters(draw):
    """(parameter, args, kwargs): one map parameter and the call that
    docs/parallel.md's table says it makes."""
    shape = draw(st.sampled_from(["scalar", "tuple", "tuple+kwargs", "list+kwargs", "kwargs",
                                  "arg"]))
    if shape == "scalar":
        value = draw(SCALARS)
        return value, (value,), {}
    if shape == "tuple":
        args = draw(SCALAR_ARGS)
        return args, args, {}
    if shape == "tuple+kwargs":
        args, kwargs = draw(SCALAR_ARGS), draw(KWARGS)
        return args + (kwargs,), args, kwargs
    if shape == "list+kwargs":  # a list is unpacked like a tuple
        args, kwargs = draw(SCALAR_ARGS), draw(KWARGS)
        return list(args) + [kwargs], args, kwargs
    if shape == "kwargs":
        kwargs = draw(KWARGS)
        return kwargs, (), kwargs
    args, kwargs = draw(ANY_ARGS), draw(KWARGS)
    return parallel.arg(*args, **kwargs), args, kwargs


@st.composite
def par_entries(draw):
    """(entry, fn, args, kwargs): one par entry and the call it stands for."""
    shape = draw(st.sampled_from(["future", "decorated.future", "tuple", "tuple+kwargs", "bare"]))
    fn = draw(st.sampled_from([describe, describe_other]))
    if shape == "future":
        args, kwargs = draw(ANY_ARGS), draw(KWARGS)
        return parallel.future(fn, *args, **kwargs), fn, args, kwargs
    if shape == "decorated.future":
        decorated = draw(st.sampled_from(sorted(PLAIN, key=lambda f: f.__name__)))
        args, kwargs = draw(ANY_ARGS), draw(KWARGS)
        return decorated.future(*args, **kwargs), PLAIN[decorated], args, kwargs
    if shape == "tuple":
        args = draw(SCALAR_ARGS)
        return (fn,) + args, fn, args, {}
    if shape == "tuple+kwargs":
        args, kwargs = draw(SCALAR_ARGS), draw(KWARGS)
        return (fn,) + args + (kwargs,), fn, args, kwargs
    return fn, fn, (), {}


def keyed(count):
    """``count`` distinct dict keys in a random order."""
    return st.lists(st.one_of(st.text("kq", min_size=1, max_size=3), st.integers(0, 99)),
                    min_size=count, max_size=count, unique=True)


@st.composite
def containers(draw, items, kinds=("list", "tuple", "iterator", "dict")):
    """(params container, kind, keys or None) holding ``items`` in order."""
    kind = draw(st.sampled_from(kinds))
    if kind == "dict":
        keys = draw(keyed(len(items)))
        return dict(zip(keys, items)), kind, keys
    if kind == "tuple":
        return tuple(items), kind, None
    if kind == "iterator":
        return iter(items), kind, None
    return list(items), kind, None


def expected_call(fn, args, kwargs, extras):
    """What the plain call gives: extras added, the call's own keywords win."""
    return fn(*args, **{**(extras or {}), **kwargs})


def shaped(values, keys):
    """``values`` as the result shape of docs/parallel.md: a list, or a dict
    with ``keys`` in the same order."""
    return list(values) if keys is None else dict(zip(keys, values))


def assert_same_results(result, expected, keys):
    """``result`` is a ListResult / DictResult equal to ``expected``, in order."""
    if keys is None:
        assert isinstance(result, parallel.ListResult)
        assert list(result) == expected
    else:
        assert isinstance(result, parallel.DictResult)
        assert list(result.items()) == list(expected.items()), "same keys, same order"
    assert isinstance(result, parallel.BaseResult) and not result.failures


def call_map(entry, fn, params, **options):
    """``map`` through one of its documented entry points."""
    if entry == "map":
        return parallel.map(fn, params, **options)
    if entry == "thread.map":
        return parallel.thread.map(fn, params, **options)
    if entry == "decorated.map":
        return parallel.decorate(fn).map(params, **options)
    with parallel.async_map(fn, params, **options) as execution:
        return execution.results()


EMPTY = dict(extras=None, workers=None, entry="map")


@MANY
@example(specs=[], data=None, **EMPTY)
@given(specs=st.lists(map_parameters(), max_size=8), data=st.data(), extras=EXTRAS,
       workers=WORKERS, entry=st.sampled_from(["map", "thread.map", "decorated.map", "async_map"]))
def test_map_on_threads_equals_a_plain_loop(specs, data, extras, workers, entry):
    items = [param for param, _, _ in specs]
    params, _, keys = (items, "list", None) if data is None else data.draw(containers(items))
    expected = shaped([expected_call(describe, args, kwargs, extras)
                       for _, args, kwargs in specs], keys)
    result = call_map(entry, describe, params, extras=extras, max_workers=workers)
    assert_same_results(result, expected, keys)


@MANY
@given(specs=st.lists(map_parameters(), max_size=8), data=st.data(), extras=EXTRAS,
       workers=WORKERS)
def test_map_without_unpacking_passes_each_parameter_as_it_is(specs, data, extras, workers):
    items = [param for param, _, _ in specs]
    params, _, keys = data.draw(containers(items))
    # parallel.arg stays explicit; every other parameter is the one argument.
    expected = shaped([expected_call(describe, args, kwargs, extras)
                       if isinstance(item, parallel.arg) else describe(item, **(extras or {}))
                       for item, args, kwargs in specs], keys)
    result = parallel.map(describe, params, extras=extras, max_workers=workers,
                          unpack_arguments=False)
    assert_same_results(result, expected, keys)


@MANY
@example(entries=[], data=None, extras=None, workers=None)
@given(entries=st.lists(par_entries(), max_size=8), data=st.data(), extras=EXTRAS,
       workers=WORKERS)
def test_par_on_threads_equals_a_plain_loop(entries, data, extras, workers):
    calls = [entry for entry, _, _, _ in entries]
    params, _, keys = ((calls, "list", None) if data is None
                       else data.draw(containers(calls, kinds=("list", "dict"))))
    expected = shaped([expected_call(fn, args, kwargs, extras)
                       for _, fn, args, kwargs in entries], keys)
    result = parallel.par(params, extras=extras, max_workers=workers)
    assert_same_results(result, expected, keys)


@FEW
@example(specs=[], data=None, extras=None)
@given(specs=st.lists(map_parameters(), max_size=8), data=st.data(), extras=EXTRAS)
def test_map_on_processes_equals_a_plain_loop(specs, data, extras):
    items = [param for param, _, _ in specs]
    params, _, keys = (items, "list", None) if data is None else data.draw(containers(items))
    expected = shaped([expected_call(describe, args, kwargs, extras)
                       for _, args, kwargs in specs], keys)
    result = parallel.process.map(describe, params, extras=extras, max_workers=2)
    assert_same_results(result, expected, keys)


@FEW
@given(entries=st.lists(par_entries(), max_size=8), data=st.data(), extras=EXTRAS)
def test_par_on_processes_equals_a_plain_loop(entries, data, extras):
    calls = [entry for entry, _, _, _ in entries]
    params, _, keys = data.draw(containers(calls, kinds=("list", "dict")))
    expected = shaped([expected_call(fn, args, kwargs, extras)
                       for _, fn, args, kwargs in entries], keys)
    result = parallel.process.par(params, extras=extras, max_workers=2)
    assert_same_results(result, expected, keys)


# ======================================================================
# parallel: failures, raised and silent
# ======================================================================

ERROR_KINDS = ["value", "key", "custom", "zero"]


def flaky(index, error=None, **extras):
    """Fails with the exception ``error`` names, else echoes the call.
    Thread runs record each call in CALLS."""
    CALLS.append(index)
    if error == "zero":
        return index / 0
    if error is not None:
        raise make_error(error, index)
    return ("ok", index, sorted(extras.items()))


CALLS = []


def make_error(kind, index):
    """The exception ``flaky(index, kind)`` raises."""
    if kind == "zero":
        try:
            index / 0
        except ZeroDivisionError as exc:
            return exc
    return {"value": ValueError(f"item {index}"), "key": KeyError(index),
            "custom": CustomError(f"item {index}", code=index)}[kind]


FLAKY_EXTRAS = st.one_of(st.none(), st.dictionaries(st.sampled_from(["scale", "tag"]),
                                                    st.integers(0, 9), max_size=2))
ERROR_PLANS = st.lists(st.one_of(st.none(), st.sampled_from(ERROR_KINDS)), max_size=40)


def flaky_params(plan, entry):
    """The parameters of one call per entry of ``plan`` (index, error kind)."""
    if entry == "par":
        return [parallel.future(flaky, index, error) for index, error in enumerate(plan)]
    return [(index, error) for index, error in enumerate(plan)]


def run_flaky(entry, params, **options):
    """``par`` for futures, else ``map`` of flaky through ``entry``."""
    if entry == "par":
        return parallel.par(params, **options)
    return call_map(entry, flaky, params, **options)


@MANY
@given(plan=ERROR_PLANS.filter(any), workers=WORKERS,
       entry=st.sampled_from(["map", "async_map", "par"]))
def test_the_error_raised_is_the_first_in_input_order(plan, workers, entry):
    first = next(index for index, error in enumerate(plan) if error)
    expected = make_error(plan[first], first)
    with pytest.raises(type(expected)) as caught:
        run_flaky(entry, flaky_params(plan, entry), max_workers=workers)
    assert type(caught.value) is type(expected) and caught.value.args == expected.args


def expected_silent(plan, extras):
    """What silent mode must give for ``plan``: one slot per call, a
    FailedTask carrying the call and its exception where it fails."""
    slots = []
    for index, error in enumerate(plan):
        if error is None:
            slots.append(("ok", index, sorted((extras or {}).items())))
        else:
            slots.append(parallel.FailedTask(params=(index, error), kwargs=extras or {},
                                             ex=make_error(error, index)))
    return slots


def assert_nothing_lost(result, plan, extras, keys):
    """Every slot present and right, failures included, in input order."""
    expected = expected_silent(plan, extras)
    values = list(result.values()) if keys is not None else list(result)
    assert len(values) == len(plan)
    if keys is not None:
        assert list(result) == keys
    for index, (got, want) in enumerate(zip(values, expected)):
        if isinstance(want, parallel.FailedTask):
            assert isinstance(got, parallel.FailedTask), f"slot {index}: {got!r}"
            assert got == want and type(got.ex) is type(want.ex), f"slot {index}: {got!r}"
            assert getattr(got.ex, "code", None) == getattr(want.ex, "code", None)
        else:
            assert got == want, f"slot {index}"
    failed = [i for i, error in enumerate(plan) if error]
    assert result.failures is bool(failed)
    by_place = keys if keys is not None else list(range(len(plan)))
    marker = object()
    replaced = [marker if error else slot for error, slot in zip(plan, expected)]
    if keys is None:
        assert result.failed == [expected[i] for i in failed]
        assert result.succeeded == [slot for i, slot in enumerate(expected) if i not in failed]
        assert result.replace_failed(marker) == replaced
    else:
        assert result.failed == {by_place[i]: expected[i] for i in failed}
        assert result.succeeded == {by_place[i]: slot for i, slot in enumerate(expected)
                                    if i not in failed}
        assert result.replace_failed(marker) == dict(zip(keys, replaced))


@MANY
@example(plan=[], data=None, extras=None, workers=None, entry="map")
@given(plan=ERROR_PLANS, data=st.data(), extras=FLAKY_EXTRAS, workers=WORKERS,
       entry=st.sampled_from(["map", "async_map", "par"]))
def test_silent_mode_never_loses_an_item_on_threads(plan, data, extras, workers, entry):
    params = flaky_params(plan, entry)
    keys = None
    if data is not None:
        params, _, keys = data.draw(containers(params, kinds=("list", "dict")))
    del CALLS[:]
    result = run_flaky(entry, params, extras=extras, max_workers=workers, silent=True)
    assert collections.Counter(CALLS) == collections.Counter(range(len(plan))), \
        "every call runs exactly once"
    assert_nothing_lost(result, plan, extras, keys)


@FEW
@given(plan=ERROR_PLANS, data=st.data(), extras=FLAKY_EXTRAS,
       entry=st.sampled_from(["map", "par"]))
def test_silent_mode_never_loses_an_item_on_processes(plan, data, extras, entry):
    params = flaky_params(plan, entry)
    params, _, keys = data.draw(containers(params, kinds=("list", "dict")))
    options = dict(extras=extras, max_workers=2, silent=True,
                   executor=parallel.PROCESS_EXECUTOR)
    result = (parallel.par(params, **options) if entry == "par"
              else parallel.map(flaky, params, **options))
    assert_nothing_lost(result, plan, extras, keys)

