"""A pytest plugin for the mutation runs only (``-p mutation.speedups`` in
``[tool.mutmut] pytest_add_cli_args``): it changes no verdict, only what a run costs.

Every pytest config (each mutant's run, and each in-process config the option tests
make with ``pytester``) ends with five full ``gc.collect()`` passes to surface
"unraisable" exceptions; with torch in the heap that is ~0.9 s a config, more than the
tests themselves. A mutant is judged by pass/fail alone, so the passes are skipped here.
"""

from __future__ import annotations

import _pytest.unraisableexception as _unraisable


def _no_gc(iterations: int) -> None:
    return None


if hasattr(_unraisable, "gc_collect_harder"):
    _unraisable.gc_collect_harder = _no_gc
