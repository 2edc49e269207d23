"""The packages' types, as a user's type checker sees them: ``mypy --strict``
passes on the library and on tests/typed_examples.py (typed user code of
every public entry point), the examples run, and the types catch the
mistakes they are there to catch."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "tests", "typed_examples.py")

# A cold mypy run of the whole library takes a while on a loaded machine.
pytestmark = pytest.mark.timeout(600)


def run_mypy(*args, cwd=ROOT):
    """``python -m mypy ARGS`` in ``cwd``: (exit status, output)."""
    done = subprocess.run([sys.executable, "-m", "mypy", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=540)
    return done.returncode, done.stdout + done.stderr


# The oldest supported version, and 3.13 for the branches only 3.12+ takes
# (sys.monitoring), whatever interpreter runs the check.
@pytest.mark.parametrize("python_version", [None, "3.10", "3.13"])
def test_library_and_typed_examples_pass_mypy_strict(python_version):
    # The [tool.mypy] section of pyproject.toml names the files: the three
    # packages and tests/typed_examples.py.
    args = ["--strict"] + ([] if python_version is None else ["--python-version", python_version])
    status, output = run_mypy(*args)
    assert status == 0, output
    assert "Success: no issues found" in output
    assert "typed_examples.py" not in output


# The published functions with overloads: each overload must take the same
# parameters as the function (an option added to one only is missing for
# type checkers, or refused by them).
OVERLOADED = ["parallel.map", "parallel.par", "parallel.async_map", "parallel.async_par",
              "parallel.ExecutorNamespace.map", "parallel.ExecutorNamespace.par",
              "parallel.ExecutorNamespace.async_map", "parallel.ExecutorNamespace.async_par",
              "parallel.ParallelFunction.map", "parallel.ParallelFunction.async_map",
              "parallel.decorators.FunctionNamespace.map",
              "parallel.decorators.FunctionNamespace.async_map", "parallel.decorate",
              "pylateral.task", "strand.register_task"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="typing.get_overloads is 3.11+")
@pytest.mark.parametrize("path", OVERLOADED)
def test_overloads_take_the_parameters_of_the_function(path):
    import importlib
    import inspect
    import typing

    module_name, _, rest = path.partition(".")
    function = importlib.import_module(module_name)
    for part in rest.split("."):
        function = getattr(function, part)
    overloads = typing.get_overloads(function)
    assert overloads, f"{path} has no overloads"
    expected = list(inspect.signature(function).parameters)
    for overload in overloads:
        assert list(inspect.signature(overload).parameters) == expected, path


def test_typed_examples_run():
    done = subprocess.run([sys.executable, EXAMPLES], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "typed examples: all ran" in done.stdout


# Each line marked "# error" must be reported by mypy --strict, and no other
# line: a user's mistake that the annotations exist to catch.
WRONG_USER_CODE = textwrap.dedent('''\
    import parallel
    import pylateral
    import strand


    @pylateral.task
    def load(i: int) -> None:
        pass


    @pylateral.task  # error: without has_return_value a task must return None
    def compute(i: int) -> int:
        return i


    @pylateral.task(has_return_value=True)
    def collect(i: int) -> int:
        return i


    @pylateral.cache_result()
    def connect(url: str) -> bytes:
        return url.encode()


    def square(x: int) -> int:
        return x * x


    @parallel.decorate(executor="process")
    def cube(x: int) -> int:
        return x ** 3


    @strand.register_task
    def shout(text: str) -> str:
        return text.upper()


    with pylateral.task_pool():
        load(1)
        load("1")  # error
        collect(1, 2)  # error
    pylateral.task_pool(max_workers="4")  # error
    connect(1)  # error
    words: list[str] = parallel.map(square, [1, 2])  # error
    by_key: dict[str, str] = parallel.map(square, {"a": 1})  # error
    numbers: list[int] = parallel.map(square, {"a": 1})  # error
    fine: list[int] = cube.map([1, 2])
    cube.future("x")  # error
    cube("x")  # error
    parallel.map(square, [1], executor="threads")  # error
    shout(1)  # error
    text: str = strand.ThreadTaskrunner(square)(1).result()  # error
    pylateral.tsk  # error
    parallel.decorate(silent="yes")  # error
''')


def test_mypy_reports_the_mistakes_of_typed_user_code(tmp_path):
    user_code = tmp_path / "user_code.py"
    user_code.write_text(WRONG_USER_CODE)
    expected = {number for number, line in enumerate(WRONG_USER_CODE.splitlines(), 1)
                if "# error" in line}
    # Run from tmp_path, as a user's project: the packages come from where
    # they are installed, with their py.typed markers and the _lateral stubs.
    status, output = run_mypy("--strict", "--cache-dir", str(tmp_path / "cache"),
                              str(user_code), cwd=tmp_path)
    reported = {int(number) for number in
                re.findall(r"^user_code\.py:(\d+): error:", output, re.MULTILINE)}
    assert status == 1, output
    assert reported == expected, output
