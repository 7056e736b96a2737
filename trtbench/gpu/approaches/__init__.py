"""One module per approach (``trtbench.catalogue.APPROACHES`` declares each one: its engine,
graph and host memory); each module's ``Approach`` is its pipeline."""

from __future__ import annotations

import importlib
from typing import Any

from trtbench.catalogue import approach


def approach_class(name: str) -> Any:
    return importlib.import_module(f"trtbench.gpu.approaches.{approach(name).name}").Approach
