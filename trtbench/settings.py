"""How a regression is decided: the decision parameters and thresholds of regression.toml
(or a file like it), and each test's threshold.

Thresholds, first match wins: hand-set ``[fixed.<metric>]`` entries; else derived from the
saved runs of the same GPU, TensorRT version, model and weights (at least
``history_min_runs``); else ``[thresholds.<metric>]``, for a GPU with no history yet.
"""

from __future__ import annotations

import dataclasses
import statistics
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trtbench.catalogue import case_of
from trtbench.cli import Unusable
from trtbench.runs import SavedRun
from trtbench.stats import ALPHA, robust_cv, threshold_from_history

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_THRESHOLDS = ROOT / "regression.toml"
GATED = {"wall": "wall time per batch", "compute": "GPU compute per batch"}  # metric -> what it is


class Refused(Unusable):
    """An input that must not be used (a settings file, runs that must not be compared); one line."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """regression.toml: decision parameters, floors, fallback and hand-set thresholds."""

    thresholds: dict[str, dict[str, float]]  # metric -> key -> fraction (fallback without history)
    fixed: dict[str, dict[str, float]]  # metric -> key -> fraction (hand-set: always wins)
    floor: dict[str, float]  # metric -> the smallest threshold history may give
    alpha: float
    noise_multiplier: float
    cv_multiplier: float
    history_min_runs: int
    history_window: int
    max_rounds_factor: int
    ab: dict[str, dict[str, float]]  # metric -> key -> the smallest change of an A/B that counts
    ab_alpha: float
    ab_ok_alpha: float

    @classmethod
    def load(cls, path: Path = DEFAULT_THRESHOLDS) -> Settings:
        doc = read_toml(Path(path))
        for where, table, known in _known_keys(doc):
            unknown = sorted(set(table) - set(known))
            if unknown:
                raise Refused(
                    f"--thresholds {path}: unknown key(s) {', '.join(unknown)} in {where}; known: {', '.join(known)}"
                )

        def fractions(table: Any, where: str) -> dict[str, float]:
            if not isinstance(table, dict):
                raise Refused(f"--thresholds {path}: [{where}] must be a table of fractions")
            for key, value in table.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 10:
                    raise Refused(f"--thresholds {path}: {where}.{key} = {value!r} is not a fraction such as 0.10")
            return {k: float(v) for k, v in table.items()}

        def section(key: str) -> dict[str, Any]:
            table = doc.get(key, {})
            if not isinstance(table, dict):
                raise Refused(f"--thresholds {path}: {key} = {table!r} must be a table ([{key}])")
            return table

        def number(key: str, default: float, kind: type) -> Any:
            value = decision.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int if kind is int else (int, float)):
                raise Refused(
                    f"--thresholds {path}: decision.{key} = {value!r} is not "
                    f"{'an integer' if kind is int else 'a number'}"
                )
            return kind(value)

        thresholds = {m: fractions(section("thresholds").get(m, {}), f"thresholds.{m}") for m in GATED}
        for metric, table in thresholds.items():
            if "default" not in table:
                raise Refused(f"--thresholds {path}: [thresholds.{metric}] needs a 'default'")
        decision = section("decision")
        alpha = number("alpha", ALPHA, float)
        multiplier = number("noise_multiplier", 3.0, float)
        cv_multiplier = number("cv_multiplier", 5.0, float)
        min_runs = number("history_min_runs", 3, int)
        window = number("history_window", 10, int)
        factor = number("max_rounds_factor", 4, int)
        floors = fractions(section("floor"), "floor")
        ab_section = section("ab")
        ab = {m: fractions(ab_section.get(m, {"default": 0.05}), f"ab.{m}") for m in GATED}
        for metric, table in ab.items():
            if "default" not in table:
                raise Refused(f"--thresholds {path}: [ab.{metric}] needs a 'default'")
        ab_alpha, ab_ok_alpha = ab_section.get("alpha", 0.01), ab_section.get("ok_alpha", 0.05)
        for key, value in (("alpha", ab_alpha), ("ok_alpha", ab_ok_alpha)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
                raise Refused(f"--thresholds {path}: ab.{key} = {value!r} is not a significance level in (0, 0.5)")
        if not (
            0 < alpha < 1
            and multiplier > 0
            and cv_multiplier >= 0
            and min_runs >= 2
            and window >= min_runs
            and factor >= 1
        ):
            raise Refused(
                f"--thresholds {path}: [decision] needs 0 < alpha < 1, noise_multiplier > 0, cv_multiplier "
                ">= 0, history_min_runs >= 2, history_window >= history_min_runs, max_rounds_factor >= 1"
            )
        return cls(
            thresholds=thresholds,
            fixed={m: fractions(section("fixed").get(m, {}), f"fixed.{m}") for m in GATED},
            floor={m: floors.get(m, 0.01) for m in GATED},
            alpha=alpha,
            noise_multiplier=multiplier,
            cv_multiplier=cv_multiplier,
            history_min_runs=min_runs,
            history_window=window,
            max_rounds_factor=factor,
            ab=ab,
            ab_alpha=float(ab_alpha),
            ab_ok_alpha=float(ab_ok_alpha),
        )

    def ab_threshold(self, test_name: str, metric: str) -> float:
        """The smallest change of ``metric`` an A/B counts for this test."""
        value = _lookup(self.ab[metric], test_name)
        return self.ab[metric]["default"] if value is None else value


DECISION_KEYS = (
    "alpha",
    "noise_multiplier",
    "cv_multiplier",
    "history_min_runs",
    "history_window",
    "max_rounds_factor",
)
SECTIONS = ("decision", "floor", "thresholds", "fixed", "ab")


def _known_keys(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """(where, table, the keys it may hold) of every table whose keys are names, not cases: a
    misspelt key is refused, not ignored."""
    tables = [("the file", doc, SECTIONS)]
    known = {"decision": DECISION_KEYS, "floor": tuple(GATED), "thresholds": tuple(GATED), "fixed": tuple(GATED)}
    known["ab"] = ("alpha", "ok_alpha", *GATED)
    tables += [(f"[{key}]", doc[key], known[key]) for key in SECTIONS if isinstance(doc.get(key), dict)]
    return tables


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise Refused(f"--thresholds {path}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise Refused(f"--thresholds {path}: not a readable TOML file ({exc})") from None


def _lookup(table: dict[str, float], test_name: str) -> float | None:
    """The case's own entry (``cuda_graph-b1``), else its approach's (``cuda_graph``)."""
    case = case_of(test_name)
    return table.get(case, table.get(case.split("-")[0]))


def threshold_for(test_name: str, metric: str, settings: Settings, history: Sequence[SavedRun]) -> tuple[float, str]:
    """The threshold of a test's metric and where it came from; ``history`` is the runs it may
    come from, as ``compare.threshold_history`` chooses them."""
    fixed = _lookup(settings.fixed[metric], test_name)
    if fixed is not None:
        return fixed, "fixed"
    samples = [s for r in history if test_name in r.tests and (s := r.tests[test_name].gated(metric))]
    derived = history_threshold(test_name, samples, metric, settings)
    if derived is not None:
        return derived, f"history of {len(samples)} runs"
    table = settings.thresholds[metric]
    value = _lookup(table, test_name)
    return (table["default"] if value is None else value), "regression.toml"


def history_threshold(
    test_name: str, samples: Sequence[Sequence[float]], metric: str, settings: Settings
) -> float | None:
    """The threshold of one test's metric from its per-round samples in earlier runs (None:
    too few); refused where the runs cannot be of the same code."""
    derived = threshold_from_history(
        [statistics.median(x) for x in samples],
        settings.floor[metric],
        settings.noise_multiplier,
        settings.history_min_runs,
        [robust_cv(x) for x in samples],
        settings.cv_multiplier,
    )
    if derived is not None and derived >= 10:  # a threshold of 1000%: a run that is not of the same code
        spread = ", ".join(f"{statistics.median(x):.3f}" for x in samples)
        raise Refused(
            f"{test_name} {metric}: the history's medians ({spread} ms) spread too far for a threshold; "
            "remove the outlying saved run or give --storage a history of the same code"
        )
    return derived
