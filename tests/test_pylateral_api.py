"""pylateral's documented behaviour: every example of pylateral-readme.md and
pylateral-usage.md (URLs on a local server), the decorator, the pool's
waiting and parallelism, the thread count, PYLATERAL_ENABLED, cache_result
and task groups."""
import functools
import os
import random
import re
import threading
import time
import urllib.request

import pytest

import pylateral
from pylateral_support import (  # noqa: F401  (fixtures are used by name)
    PATIENCE, Counter, calls_done_while_workers_are_busy, get_json, isolated_pylateral,
    local_site, pylateral_threads,
)

pytestmark = pytest.mark.timeout(60)


# --- pylateral-readme.md ---------------------------------------------------

README_SITES = ["nytimes", "cnn", "wsj", "bbc", "some-made-up-domain"]


def serve_readme_sites(site):
    """Serve a page for each site of the README example; returns their URLs."""
    site.routes.update({f"/{name}/": f"front page of {name}".encode()
                        for name in README_SITES})
    return [site.url(f"/{name}/") for name in README_SITES]


def test_readme_example_fetches_every_url_in_parallel_then_completes(local_site, capsys):
    URLS = serve_readme_sites(local_site)
    # The five requests can only all be answered if they are in flight at once.
    all_in_flight = threading.Barrier(len(URLS), timeout=PATIENCE)
    local_site.on_request = lambda path: all_in_flight.wait()

    @pylateral.task
    def request_and_print(url):
        response = urllib.request.urlopen(url)
        print(response.read())

    with pylateral.task_pool():
        for url in URLS:
            request_and_print(url)

    print("Complete!")

    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines[:-1]) == sorted(repr(f"front page of {n}".encode())
                                        for n in README_SITES)
    assert lines[-1] == "Complete!"


def test_readme_example_with_an_unreachable_url_raises_in_the_main_thread(local_site, capsys):
    URLS = serve_readme_sites(local_site)
    del local_site.routes["/some-made-up-domain/"]

    @pylateral.task
    def request_and_print(url):
        response = urllib.request.urlopen(url)
        print(response.read())

    with pytest.raises(urllib.error.URLError):
        with pylateral.task_pool():
            for url in URLS:
                request_and_print(url)
        print("Complete!")
    assert "Complete!" not in capsys.readouterr().out


def test_task_call_returns_before_the_task_runs_and_the_main_thread_carries_on():
    main_went_on = threading.Event()
    saw_main_go_on = []

    @pylateral.task
    def wait_for_main():
        saw_main_go_on.append(main_went_on.wait(PATIENCE))

    with pylateral.task_pool():
        assert wait_for_main() is None
        main_went_on.set()
    assert saw_main_go_on == [True]


# --- pylateral-usage.md: return values --------------------------------------

def test_usage_favorite_animal_raises_unexpected_return_value(capsys):
    @pylateral.task
    def favorite_animal():
        return "cats"

    with pytest.raises(pylateral.UnexpectedReturnValueError):
        with pylateral.task_pool():
            print(favorite_animal())  # raises UnexpectedReturnValueError()
    assert capsys.readouterr().out == "None\n"


def test_usage_animal_speak_collects_both_return_values(capsys):
    @pylateral.task(has_return_value=True)
    def animal_speak(animal):
        time.sleep(random.random())
        if animal == "cats":
            return "meow"
        elif animal == "dogs":
            return "woof"

    with pylateral.task_pool() as pool:
        animal_speak("cats")
        animal_speak("dogs")

    print(pool.return_values())  # either '["meow", "woof"]' or '["woof", "meow"]'
    assert capsys.readouterr().out in ("['meow', 'woof']\n", "['woof', 'meow']\n")
    assert sorted(pool.results) == ["meow", "woof"]


def test_return_values_gathers_every_value_exactly_once():
    @pylateral.task(has_return_value=True)
    def square(x):
        return x * x

    with pylateral.task_pool(max_workers=4) as pool:
        for x in range(300):
            square(x)
    assert sorted(pool.return_values()) == [x * x for x in range(300)]
    assert sorted(pool.results) == sorted(pool.return_values())
    assert isinstance(pool.return_values(), list)


# --- pylateral-usage.md: nested tasks ---------------------------------------

def serve_placeholder_api(site):
    """Serve a small jsonplaceholder.typicode.com look-alike; returns
    post id -> title."""
    users = [{"id": u} for u in (1, 2, 3)]
    titles = {}
    for user in users:
        posts = [{"id": user["id"] * 10 + n, "userId": user["id"]} for n in range(4)]
        site.routes[f"/posts?userId={user['id']}"] = posts
        for post in posts:
            titles[post["id"]] = f"title-{post['id']}"
            site.routes[f"/posts/{post['id']}"] = {"id": post["id"],
                                                   "title": titles[post["id"]]}
    site.routes["/users"] = users
    return titles


def test_one_worker_runs_a_long_queue_in_the_order_of_the_calls():
    # Thousands of calls queue up behind a busy worker, more than the
    # queue keeps in one block of memory; they still run first in, first out.
    gate = threading.Event()
    order = []

    @pylateral.task
    def wait_for_the_gate():
        gate.wait(PATIENCE)

    @pylateral.task
    def record(i):
        order.append(i)

    with pylateral.task_pool(max_workers=1):
        wait_for_the_gate()
        for i in range(3000):
            record(i)
        gate.set()
    assert order == list(range(3000))


def test_usage_nested_tasks_example_prints_every_post_title_once(local_site, capsys):
    titles = serve_placeholder_api(local_site)
    base = local_site.url("")

    @pylateral.task
    def print_post_title(post_id):
        post = get_json(f"{base}/posts/{post_id}")
        print(post['title'])

    # The document calls this task both print_post_title and fetch_post.
    fetch_post = print_post_title

    @pylateral.task
    def fetch_posts_by_user(user_id):
        """This task method calls other task methods."""
        posts = get_json(f"{base}/posts?userId={user_id}")
        for post in posts:
            fetch_post(post['id'])

    with pylateral.task_pool() as pool:
        users = get_json(f"{base}/users")
        for user in users:
            fetch_posts_by_user(user['id'])

    assert sorted(capsys.readouterr().out.splitlines()) == sorted(titles.values())
    assert all(local_site.request_count(f"/posts/{i}") == 1 for i in titles)
    assert pool.errors == []


def test_nested_task_call_does_not_block_the_calling_task():
    child_may_finish = threading.Event()
    log = []

    @pylateral.task
    def child():
        log.append(("child", child_may_finish.wait(PATIENCE)))

    @pylateral.task
    def parent():
        child()
        log.append(("parent returned from child()",))
        child_may_finish.set()

    with pylateral.task_pool(max_workers=2):
        parent()
    assert log == [("parent returned from child()",), ("child", True)]


def test_pool_exit_waits_for_a_deep_tree_of_nested_tasks():
    nodes = Counter()
    depth, fan_out, roots = 4, 3, 2

    @pylateral.task
    def node(level):
        if level == depth:
            time.sleep(0.001)  # leaves finish last, after their parents
        else:
            for _ in range(fan_out):
                node(level + 1)
        nodes.add()

    with pylateral.task_pool(max_workers=6):
        for _ in range(roots):
            node(0)
    count_at_exit = nodes.value
    per_root = sum(fan_out ** level for level in range(depth + 1))
    assert count_at_exit == roots * per_root


# --- pylateral-usage.md: waiting for tasks ----------------------------------

def test_usage_join_example_prints_all_numbers_before_any_letter(capsys):
    @pylateral.task
    def parallel_print(value):
        time.sleep(random.random())
        print(value)

    with pylateral.task_pool():
        for i in range(10):
            parallel_print(i)  # Print the numbers...

        pylateral.join()  # ...then...

        for i in range(10):
            parallel_print(chr(ord('A') + i))  # ...print the letters.

    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines[:10]) == [str(i) for i in range(10)]
    assert sorted(lines[10:]) == [chr(ord('A') + i) for i in range(10)]


def test_join_finishes_the_first_batch_before_the_second_starts():
    events = []
    lock = threading.Lock()

    @pylateral.task
    def step(batch):
        with lock:
            events.append(("start", batch))
        time.sleep(0.02)  # without join the second batch would overtake this
        with lock:
            events.append(("end", batch))

    with pylateral.task_pool(max_workers=4) as pool:
        for _ in range(8):
            step(1)
        pylateral.join()
        for _ in range(8):
            step(2)
        pool.join()
    last_end_of_first = max(i for i, e in enumerate(events) if e == ("end", 1))
    first_start_of_second = events.index(("start", 2))
    assert last_end_of_first < first_start_of_second
    assert len(events) == 32


def test_join_without_a_pool_does_nothing():
    assert pylateral.get_current_task_pool() is None
    assert pylateral.join() is None
    assert pylateral.join(timeout=0) is None


# --- the decorator ------------------------------------------------------------

def test_the_three_decorator_forms_all_make_tasks():
    thread_names = []

    @pylateral.task
    def bare():
        thread_names.append(threading.current_thread().name)

    @pylateral.task()
    def called():
        thread_names.append(threading.current_thread().name)

    @pylateral.task(has_return_value=True)
    def valued():
        thread_names.append(threading.current_thread().name)
        return "value"

    with pylateral.task_pool(max_workers=2) as pool:
        assert bare() is None
        assert called() is None
        assert valued() is None
    assert len(thread_names) == 3
    assert all(re.fullmatch(r"pylateral-\d+", name) for name in thread_names)
    assert pool.return_values() == ["value"]


def test_task_keeps_the_function_metadata():
    def documented(a, b=2):
        """Adds things."""

    wrapped = pylateral.task(documented)
    assert wrapped.__name__ == "documented"
    assert wrapped.__doc__ == "Adds things."
    assert wrapped.__wrapped__ is documented
    assert wrapped.__qualname__ == documented.__qualname__
    assert wrapped.__module__ == __name__
    valued = pylateral.task(has_return_value=True)(documented)
    assert valued.__wrapped__ is documented
    assert functools.wraps(documented)(lambda: None).__name__ == "documented"


class Greeter:
    """A class whose methods are tasks."""

    def __init__(self, greeting):
        self.greeting = greeting
        self.said = []

    @pylateral.task
    def say(self, name, punctuation="!"):
        """Say hello."""
        self.said.append((f"{self.greeting} {name}{punctuation}",
                          threading.current_thread().name))

    @pylateral.task(has_return_value=True)
    def greeting_for(self, name):
        """Return the greeting for ``name``."""
        return f"{self.greeting} {name}"


def test_tasks_work_as_methods():
    hello, hi = Greeter("hello"), Greeter("hi")
    with pylateral.task_pool(max_workers=2) as pool:
        hello.say("ann")
        hi.say("bob", punctuation="?")
        hi.greeting_for("cy")
    assert [said for said, _ in hello.said] == ["hello ann!"]
    assert [said for said, _ in hi.said] == ["hi bob?"]
    assert hello.said[0][1].startswith("pylateral-")
    assert pool.return_values() == ["hi cy"]
    assert Greeter.say.__doc__ == "Say hello."


# --- outside a pool -----------------------------------------------------------

def test_outside_a_pool_a_task_runs_at_once_in_the_calling_thread():
    calls = []

    @pylateral.task
    def record(x):
        calls.append((x, threading.get_ident()))

    @pylateral.task(has_return_value=True)
    def valued():
        return "ignored"

    assert record(1) is None
    assert calls == [(1, threading.get_ident())]  # already done when the call returns
    assert valued() is None
    Greeter("hey").say("dee")
    assert pylateral_threads() == []


# --- parallelism and threads -------------------------------------------------

def test_tasks_run_in_parallel_on_threads_named_pylateral_n():
    n = 6
    together = threading.Barrier(n, timeout=PATIENCE)
    names = []

    @pylateral.task
    def meet():
        together.wait()  # passes only once n tasks are running at the same time
        names.append(threading.current_thread().name)

    with pylateral.task_pool(max_workers=n):
        for _ in range(n):
            meet()
        assert all(name.startswith("pylateral-") for name in pylateral_threads())
    assert sorted(names) == sorted(f"pylateral-{i}" for i in range(1, n + 1))
    assert pylateral_threads() == []


def test_max_workers_bounds_the_tasks_running_at_once():
    running = Counter()
    first_two = threading.Barrier(2, timeout=PATIENCE)
    done = Counter()

    @pylateral.task
    def work(i):
        running.add()
        if i < 2:
            first_two.wait()  # makes the peak reach 2 for sure
        time.sleep(0.005)
        running.add(-1)
        done.add()

    with pylateral.task_pool(max_workers=2) as pool:
        for i in range(30):
            work(i)
    assert pool.max_workers == 2
    assert running.peak == 2
    assert done.value == 30


def test_get_current_task_pool_is_set_only_inside_the_pool():
    assert pylateral.get_current_task_pool() is None
    with pylateral.task_pool(max_workers=1):
        assert pylateral.get_current_task_pool() is not None
    assert pylateral.get_current_task_pool() is None


def test_a_new_pool_opens_after_the_previous_one_closed():
    ran = []

    @pylateral.task
    def mark(i):
        ran.append(i)

    for i in range(3):
        with pylateral.task_pool(max_workers=2):
            mark(i)
    assert sorted(ran) == [0, 1, 2]


# --- block_when_saturated -----------------------------------------------------

def test_block_when_saturated_keeps_the_main_thread_within_the_bound():
    # As in the published pylateral: the call that makes every worker busy
    # (call number max_workers) returns only once a worker is free.
    assert calls_done_while_workers_are_busy(2, 10, block_when_saturated=True) == 1


def test_block_when_saturated_does_not_block_nested_calls_in_workers():
    leaves = Counter()

    @pylateral.task
    def leaf():
        leaves.add()

    @pylateral.task
    def fan_out():
        for _ in range(25):
            leaf()  # the queue is far beyond max_workers here

    with pylateral.task_pool(max_workers=1, block_when_saturated=True):
        fan_out()
        fan_out()
    assert leaves.value == 50


# --- thread count ---------------------------------------------------------------

def test_max_workers_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("PYLATERAL_WORKERS", "7")
    assert pylateral.task_pool(max_workers=3).max_workers == 3


def test_pylateral_workers_environment_sets_the_thread_count(monkeypatch):
    monkeypatch.setenv("PYLATERAL_WORKERS", "7")
    with pylateral.task_pool() as pool:
        pass
    assert pool.max_workers == 7


@pytest.mark.parametrize("cpus", [1, 3])
def test_default_thread_count_is_five_times_the_cpu_count(monkeypatch, cpus):
    assert pylateral.task_pool().max_workers == 5 * os.cpu_count()
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert pylateral.task_pool().max_workers == 5 * cpus


# --- PYLATERAL_ENABLED ------------------------------------------------------------

@pytest.mark.parametrize("value", ["false", "False", "FALSE"])
def test_disabled_pylateral_runs_tasks_at_once_in_the_calling_thread(monkeypatch, value):
    monkeypatch.setenv("PYLATERAL_ENABLED", value)
    calls = []

    @pylateral.task
    def record(x):
        calls.append((x, threading.get_ident()))

    @pylateral.task(has_return_value=True)
    def double(x):
        return 2 * x

    with pylateral.task_pool(max_workers=4) as pool:
        record(1)
        assert calls == [(1, threading.get_ident())]
        double(21)
        assert pylateral_threads() == []
        pylateral.join()
    assert pool.return_values() == [42]
    assert not pool.enabled


def test_disabled_pylateral_raises_task_errors_at_the_call(monkeypatch):
    monkeypatch.setenv("PYLATERAL_ENABLED", "false")

    @pylateral.task
    def bad_task():
        raise Exception("Bad Task!")

    with pylateral.task_pool():
        with pytest.raises(Exception, match="Bad Task!"):
            bad_task()


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_enabled_pylateral_uses_threads(monkeypatch, value):
    monkeypatch.setenv("PYLATERAL_ENABLED", value)
    idents = []

    @pylateral.task
    def record():
        idents.append(threading.get_ident())

    with pylateral.task_pool(max_workers=1) as pool:
        record()
    assert pool.enabled
    assert idents and idents[0] != threading.get_ident()


# --- thread-local storage and cache_result ----------------------------------------

class MagicNumberClient:
    """The client of the usage document's thread-local example."""

    def __init__(self, magic_number):
        self._magic_number = magic_number

    def get_magic_number(self):
        """The number this client was made with."""
        return self._magic_number


def test_usage_thread_local_example_prints_at_most_two_numbers(capsys):
    @pylateral.cache_result(scope=pylateral.CacheScopes.THREAD)
    def get_magic_number_client():
        return MagicNumberClient(random.random())

    @pylateral.task
    def print_magic_number():
        client = get_magic_number_client()
        print(client.get_magic_number())

    with pylateral.task_pool(max_workers=2):
        for _ in range(10):
            print_magic_number()  # This will print at most 2 different numbers

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10
    assert 1 <= len(set(lines)) <= 2


def test_thread_scope_gives_one_client_per_thread():
    both_threads = threading.Barrier(2, timeout=PATIENCE)
    seen = []  # (thread name, client); keeps the clients alive so ids stay unique

    @pylateral.cache_result(scope=pylateral.CacheScopes.THREAD)
    def get_client():
        return MagicNumberClient(random.random())

    @pylateral.task
    def use_client(i):
        if i < 2:
            both_threads.wait()  # both workers take part
        seen.append((threading.current_thread().name, get_client()))

    with pylateral.task_pool(max_workers=2):
        for i in range(10):
            use_client(i)
    assert len({id(client) for _, client in seen}) == 2
    for name in {name for name, _ in seen}:
        assert len({id(c) for n, c in seen if n == name}) == 1
    assert get_client() is get_client()
    assert id(get_client()) not in {id(client) for _, client in seen}


def test_threading_local_works_in_tasks():
    local = threading.local()
    both_threads = threading.Barrier(2, timeout=PATIENCE)
    seen = []

    @pylateral.task
    def use_local(i):
        if i < 2:
            both_threads.wait()
        if not hasattr(local, "token"):
            local.token = object()
        seen.append((threading.current_thread().name, local.token))

    with pylateral.task_pool(max_workers=2):
        for i in range(8):
            use_local(i)
    assert len({id(token) for _, token in seen}) == 2
    assert len({(name, id(token)) for name, token in seen}) == 2


def test_process_scope_computes_once_under_contention():
    n = 64
    start_together = threading.Barrier(n, timeout=PATIENCE)
    computed = Counter()
    got = []

    @pylateral.cache_result(scope=pylateral.CacheScopes.PROCESS)
    def get_client():
        computed.add()
        time.sleep(0.05)  # widens the window in which a second computation could start
        return MagicNumberClient(random.random())

    @pylateral.task
    def use_client():
        start_together.wait()
        got.append(get_client())

    with pylateral.task_pool(max_workers=n):
        for _ in range(n):
            use_client()
    assert computed.value == 1
    assert len(got) == n and all(client is got[0] for client in got)
    assert get_client() is got[0]


@pytest.mark.parametrize("scope", list(pylateral.CacheScopes))
def test_cache_result_keys_on_arguments_and_clear_cache_forgets(scope):
    calls = Counter()

    @pylateral.cache_result(scope=scope)
    def make(name, size=1):
        """Makes a thing."""
        calls.add()
        return [name, size]

    first = make("a")
    assert make("a") is first
    assert make("a", size=2) is not first
    assert make("b") is not first
    assert calls.value == 3
    make.clear_cache()
    assert make("a") is not first
    assert make("a") == first
    assert calls.value == 4
    assert make.__name__ == "make" and make.__doc__ == "Makes a thing."


def test_cache_result_default_scope_is_thread():
    @pylateral.cache_result()
    def token():
        return object()

    other = []
    thread = threading.Thread(target=lambda: other.append(token()))
    thread.start()
    thread.join()
    assert token() is token()
    assert other[0] is not token()


# --- task groups ---------------------------------------------------------------

def test_task_group_waits_for_its_tasks_and_their_nested_tasks():
    done = Counter()

    @pylateral.task
    def leaf():
        time.sleep(0.005)
        done.add()

    @pylateral.task(has_return_value=True)
    def branch(i):
        for _ in range(5):
            leaf()
        return i

    with pylateral.task_pool(max_workers=3):
        with pylateral.task_group() as group:
            for i in range(4):
                branch(i)
        assert done.value == 20  # checked while the pool is still open
        assert sorted(group.results) == [0, 1, 2, 3]


def test_task_groups_are_independent_of_other_tasks_and_groups():
    gate = threading.Event()

    @pylateral.task
    def held():
        gate.wait(PATIENCE)

    @pylateral.task(has_return_value=True)
    def echo(x):
        return x

    with pylateral.task_pool(max_workers=3) as pool:
        held()  # outside any group: the groups must not wait for it
        with pylateral.task_group() as first:
            echo("a")
            echo("b")
        with pylateral.task_group() as second:
            echo("c")
        assert not gate.is_set()
        gate.set()
        echo("in pool")
    assert sorted(first.results) == ["a", "b"]
    assert second.results == ["c"]
    assert pool.return_values() == ["in pool"]


def test_task_group_works_without_a_pool():
    @pylateral.task(has_return_value=True)
    def square(x):
        return x * x

    with pylateral.task_group() as group:
        for x in range(4):
            square(x)
    assert group.results == [0, 1, 4, 9]


def test_task_group_inside_a_task_does_not_deadlock_with_one_worker():
    @pylateral.task(has_return_value=True)
    def square(x):
        return x * x

    @pylateral.task(has_return_value=True)
    def sum_of_squares(n):
        with pylateral.task_group() as group:
            for x in range(n):
                square(x)
        return sum(group.results)

    with pylateral.task_pool(max_workers=1) as pool:
        sum_of_squares(4)
        sum_of_squares(5)
    assert sorted(pool.return_values()) == [14, 30]
