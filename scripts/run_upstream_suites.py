"""Run the published libraries' own test suites against the installed lateral.

    python scripts/run_upstream_suites.py [--pylateral DIR] [--parallel DIR] [--strand DIR]

Each DIR is a source tree of the published version, fetched beforehand (this
script fetches nothing): pylateral 1.0.0 (boxysean/pylateral, tag v1.0.0),
python-parallel 0.9.1 (santiagobasulto/parallel, the "Bumped version to
0.9.1" commit) and strand 0.1.8 (i2mint/strand, tag 0.1.8).  Only their
tests are copied, to a scratch directory the suites run from, so that
``import pylateral`` (and parallel, strand) finds lateral, never the
published package in DIR.  For strand the ``as_task`` doctest of
DIR/strand/taskrunning/decorators.py runs too, in the namespace of lateral's
``strand.taskrunning.decorators``.

Prints one line per suite (passed / failed counts) and exits with status 1
if anything failed.  Needs pytest in the running interpreter.
"""
import argparse
import ast
import doctest
import os
import re
import shutil
import subprocess
import sys
import tempfile

#: suite -> (the package lateral must provide, the tests folder in DIR).
SUITES = {
    "pylateral": ("pylateral", "tests"),
    "parallel": ("parallel", "tests"),
    "strand": ("strand", os.path.join("strand", "tests")),
}


def copy_tests(source_dir, tests, scratch):
    """Copy DIR/tests to scratch/tests (a package if it was one)."""
    origin = os.path.join(source_dir, tests)
    if not os.path.isdir(origin):
        raise SystemExit(f"{origin} does not exist: is {source_dir} the right source tree?")
    target = os.path.join(scratch, "tests")
    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def check_resolves_to_lateral(package, source_dir, scratch):
    """Fail unless ``import package``, from the scratch directory, is lateral's."""
    code = f"import {package}, os; print(os.path.realpath({package}.__file__))"
    found = subprocess.run([sys.executable, "-c", code], cwd=scratch, capture_output=True,
                           text=True, check=True).stdout.strip()
    if found.startswith(os.path.realpath(source_dir) + os.sep):
        raise SystemExit(f"import {package} finds the published package ({found}), not lateral")
    return found


def run_pytest(scratch):
    """(passed, failed, summary line) of pytest run in ``scratch``."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", scratch, "tests"], cwd=scratch, capture_output=True,
                          text=True)
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    counts = {word: int(number) for number, word in
              re.findall(r"(\d+) (passed|failed|errors?)", summary)}
    failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    if done.returncode != 0 and failed == 0:
        failed = 1  # collection or usage error: say so
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
    elif failed:
        print(done.stdout[-8000:])
    return counts.get("passed", 0), failed, summary


def run_as_task_doctest(source_dir):
    """(attempted, failed) of the as_task doctest of the published strand,
    run against lateral's strand.taskrunning.decorators."""
    import strand.taskrunning.decorators as lateral_decorators

    path = os.path.join(source_dir, "strand", "taskrunning", "decorators.py")
    with open(path) as source:
        tree = ast.parse(source.read())
    func = next(node for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name == "as_task")
    test = doctest.DocTestParser().get_doctest(ast.get_docstring(func, clean=False),
                                               dict(vars(lateral_decorators)), "as_task",
                                               path, func.lineno)
    runner = doctest.DocTestRunner()
    runner.run(test)
    return runner.summarize(verbose=False).attempted, runner.failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in SUITES:
        parser.add_argument(f"--{name}", metavar="DIR", help=f"the published {name} source tree")
    args = parser.parse_args(argv)
    given = {name: getattr(args, name) for name in SUITES if getattr(args, name)}
    if not given:
        parser.error("give at least one of --pylateral, --parallel, --strand")
    any_failed = False
    for name, source_dir in given.items():
        package, tests = SUITES[name]
        with tempfile.TemporaryDirectory(prefix=f"upstream-{name}-") as scratch:
            copy_tests(source_dir, tests, scratch)
            found = check_resolves_to_lateral(package, source_dir, scratch)
            passed, failed, summary = run_pytest(scratch)
        print(f"{name}: {passed} passed, {failed} failed ({summary}; {package} = {found})")
        any_failed |= failed > 0
        if name == "strand":
            attempted, failures = run_as_task_doctest(source_dir)
            print(f"strand as_task doctest: {attempted - failures} of {attempted} examples "
                  "passed")
            any_failed |= failures > 0
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
