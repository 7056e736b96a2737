"""A pytest plugin for the mutation runs only (``-p mutation.speedups`` in
``[tool.mutmut] pytest_add_cli_args``). It changes what a run costs, never a verdict:
a mutant is killed when any of its tests fails, whatever their order, and mutmut stops a
mutant's run at the first failure (``-x``).

* Every pytest config (each mutant's run, and each in-process config the option tests make
  with ``pytester``) ends with five full ``gc.collect()`` passes to surface "unraisable"
  exceptions; with torch in the heap that is ~0.9 s a config, more than the tests
  themselves. Pass/fail does not depend on them, so they are skipped.
* Each mutant's run is a fork of mutmut's process, which holds torch and every module the
  tests imported. A full garbage collection in the fork would write to every one of those
  objects, copying the whole heap page by page; ``gc.freeze()`` leaves them out of it.
* pytest-benchmark asks git for the commit (four subprocesses) each time a config is made,
  to fill in a default it only uses when saving; the commit does not change during a
  mutation run, so it is asked once. Its machine id (``platform.architecture()``, which runs
  ``file`` on the interpreter: a subprocess per config) is asked once too.
* The tests that pin a whole surface at once (the option help and defaults, the compare
  command's help) run first: most mutants of ``pytest_addoption`` and ``main`` (help
  strings, metavars, defaults) then fail on the first test instead of after ~40 others.
"""

from __future__ import annotations

import copy
import functools
import gc

import _pytest.unraisableexception as _unraisable
import pytest

try:
    import pytest_benchmark.session as _benchmark_session
    import pytest_benchmark.utils as _benchmark_utils
except ImportError:  # pragma: no cover - the suite requires it; nothing to speed up without it
    _benchmark_utils = _benchmark_session = None

FIRST = (
    "tests/test_options.py::test_help_lists_every_option_with_its_metavar_and_default_in_process",
    "tests/test_options.py::test_defaults_are_the_tutorials",
    "tests/test_options.py::test_values_are_parsed",
    "tests/test_options.py::test_defaults_are_values_not_just_falsy",
    "tests/test_compare_report.py::test_help_names_the_command_its_options_and_exit_statuses",
)


def _no_gc(iterations: int) -> None:
    return None


if hasattr(_unraisable, "gc_collect_harder"):
    _unraisable.gc_collect_harder = _no_gc


if _benchmark_utils is not None and hasattr(_benchmark_utils, "get_commit_info"):
    _commit_info = functools.lru_cache(maxsize=None)(_benchmark_utils.get_commit_info)
    _benchmark_utils.get_commit_info = lambda project_name=None: copy.deepcopy(_commit_info(project_name))

if _benchmark_session is not None and hasattr(_benchmark_session, "get_machine_id"):
    _benchmark_session.get_machine_id = functools.lru_cache(maxsize=None)(_benchmark_session.get_machine_id)

gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    gc.freeze()  # what the session imported so far is here for good


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the FIRST tests to the front; the others keep their order."""
    rank = {nodeid: i for i, nodeid in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.removeprefix("mutants/"), len(FIRST)))
