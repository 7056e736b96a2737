"""Mutation testing of the judging modules, with a floor per module.

    python3 mutation/run.py            # what CI runs (.ci/run): a clean run, then the verdict
    python3 mutation/run.py --again    # re-judge the last run's results without running mutmut
    python3 mutation/run.py --all      # also list every unexplained survivor of modules above their floor
    python3 mutation/run.py --force    # run even when the inputs are those of mutation/record.json

A passing run writes mutation/record.json: every input of the run (the sha256 of each file
mutmut copies, bytecode caches aside, and of requirements.txt and the ``[tool.mutmut]``
table; the Python; each installed distribution's version; the environment variables that
steer pytest; what each backend finds on this machine) and the table it printed. Commit it
with the change. When every input is identical to the record's, the verdict stands without
re-running (the idea of StrykerJS's incremental mode, at the grain of the whole run); any
difference, an unreadable record, or a link among the files runs everything, and the run
names why.

mutmut (3.x, configured in pyproject.toml's ``[tool.mutmut]``) copies the sources into
``mutants/``, makes every mutant of the modules in ``only_mutate``, and runs the tests
that reach each mutated function (the fast in-process ones selected there) against it.
This script starts from an empty ``mutants/`` every time, runs it, and judges each module:

    score = killed / (mutants - listed equivalents - mutants of excluded functions)

where a mutant that made the tests fail, time out or crash counts as killed, and one
that the tests passed with (or that no selected test reached) as survived. Equivalent
mutants (no test could tell them from the original) and functions that cannot be tested
in process are listed, each with its reason, in mutation/equivalent.toml; an entry that
matches no surviving mutant is an error (the code moved on, or a test now kills it).

Exit status: 0 every module at or above its floor; 1 a module below it (its unexplained
survivors are printed: file:line, function and the edit); 2 mutmut itself failed (it exited
with an error, left a module without results, or mutants unrun: --again still judges the
others, and still exits 2), or equivalent.toml is wrong (unreadable, an entry without its
keys, or one that matches no surviving mutant).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import datetime
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, from mutation/: the suite's own modules are imported below
    sys.path.insert(0, str(ROOT))
EQUIVALENTS = Path(__file__).resolve().parent / "equivalent.toml"
RECORD_NAME = "mutation/record.json"
RECORD = ROOT / RECORD_NAME
MUTANTS = ROOT / "mutants"
LOG = MUTANTS / "mutmut-run.log"

# The floor of every module, in percent (issue 11: 90% for each).
DEFAULT_FLOOR = 90.0
FLOORS: dict[str, float] = {}

# mutmut's exit codes of a mutant's test run (mutmut.stats.status_by_exit_code)
KILLED = {1: "killed", 3: "killed"}
TIMEOUT = {36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}
CRASHED = {-11: "segfault", -9: "segfault"}
NOT_REACHED = {5: "no tests", 33: "no tests"}
# pytest itself failed (3: INTERNALERROR; 255: the forkserver's run_tests raised): the suite
# could not start or finish, so no test judged the mutant; counted killed, shown apart
PYTEST_CRASHED = {3, 255}


class Broken(Exception):
    """The results cannot be judged: mutmut failed, or mutation/equivalent.toml is wrong (exit 2)."""


@dataclasses.dataclass
class Mutant:
    name: str  # trtbench.stats.x_decide__mutmut_12
    module: str  # trtbench.stats
    path: str  # trtbench/stats.py
    function: str  # decide, or Run.load
    exit_code: int | None
    removed: list[str] = dataclasses.field(default_factory=list)  # the original line(s), stripped
    added: list[str] = dataclasses.field(default_factory=list)  # the mutant's line(s), stripped
    line: int | None = None  # of the first changed line in the source file

    @property
    def detected(self) -> bool:
        return self.exit_code in KILLED or self.exit_code in TIMEOUT or self.exit_code in CRASHED

    @property
    def status(self) -> str:
        code = self.exit_code
        return {0: "survived", **KILLED, **TIMEOUT, **CRASHED, **NOT_REACHED}.get(code, f"exit {code}")  # type: ignore[arg-type]

    @property
    def edit(self) -> str:
        return f"{_norm(self.removed)}  ->  {_norm(self.added)}"


def _norm(lines: list[str]) -> str:
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def mutmut_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def module_of(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def function_of(mutant_name: str) -> str:
    """``trtbench.compare.xǁRunǁload__mutmut_3`` -> ``Run.load``; ``x_decide__mutmut_1`` -> ``decide``."""
    mangled = mutant_name.rpartition(".")[2].rpartition("__mutmut_")[0]
    if mangled.startswith("x\u01c1"):
        return ".".join(mangled[2:].split("\u01c1"))
    return mangled.removeprefix("x_")


def run_mutmut(max_children: int) -> int:
    """A clean mutmut run (its chatty progress goes to mutants/mutmut-run.log)."""
    if MUTANTS.exists():
        shutil.rmtree(MUTANTS)
    MUTANTS.mkdir()
    # `mutmut run` as its console script does it, with this interpreter
    code = "import sys; from mutmut.__main__ import cli; sys.argv[0] = 'mutmut'; cli()"
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same test order, so the same time, each run
    with open(LOG, "w") as log:
        done = subprocess.run(
            [sys.executable, "-c", code, "run", "--max-children", str(max_children)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return done.returncode


def load_mutants(paths: list[str]) -> list[Mutant]:
    mutants = []
    for path in paths:
        meta = MUTANTS / (path + ".meta")
        if not meta.is_file():
            raise Broken(f"{meta.relative_to(ROOT)} is missing: mutmut made no mutants of {path}")
        try:
            doc = json.loads(meta.read_text())
            codes = doc["exit_code_by_key"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Broken(f"{meta.relative_to(ROOT)}: unreadable results of mutmut ({exc!r})") from None
        for name, code in sorted(codes.items(), key=lambda kv: _natural(kv[0])):
            mutants.append(Mutant(name, module_of(path), path, function_of(name), code))
    return mutants


def _natural(name: str) -> tuple[str, int]:
    head, _, number = name.rpartition("__mutmut_")
    return head, int(number) if number.isdigit() else 0


def function_spans(path: str) -> dict[str, tuple[int, int]]:
    """``decide`` / ``Run.load`` -> (first line, last line) in the source file."""
    spans: dict[str, tuple[int, int]] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                spans[prefix + node.name] = (node.lineno, node.end_lineno or node.lineno)
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")

    visit(ast.parse((ROOT / path).read_text()).body, "")
    return spans


def describe_edits(mutants: list[Mutant]) -> None:
    """Fill in each mutant's edit (the changed lines) and its line in the source file."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    sources: dict[str, list[str]] = {}
    spans: dict[str, dict[str, tuple[int, int]]] = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for m in mutants:
            first_change = None
            line_no = 1
            for line in get_diff_for_mutant(m.name, path=m.path).splitlines():
                if line.startswith(("---", "+++")):
                    continue
                if line.startswith("@@"):
                    line_no = int(re.match(r"@@ -(\d+)", line).group(1))  # type: ignore[union-attr]
                elif line.startswith("-"):
                    m.removed.append(line[1:].strip())
                    first_change = line_no if first_change is None else first_change
                    line_no += 1
                elif line.startswith("+"):
                    m.added.append(line[1:].strip())
                    first_change = line_no if first_change is None else first_change
                else:
                    line_no += 1
            if m.path not in sources:
                sources[m.path] = (ROOT / m.path).read_text().splitlines()
                spans[m.path] = function_spans(m.path)
            start, end = spans[m.path].get(m.function, (1, len(sources[m.path])))
            if m.removed:
                hits = [n for n in range(start, end + 1) if sources[m.path][n - 1].strip() == m.removed[0]]
                guess = start + (first_change or 1) - 1
                m.line = min(hits, key=lambda n: abs(n - guess)) if hits else start
            else:
                m.line = start
    finally:
        os.chdir(cwd)


@dataclasses.dataclass
class Entry:
    kind: str  # equivalent or excluded
    module: str
    function: str
    reason: str
    original: str = ""
    mutant: str = ""
    matched: int = 0

    def matches(self, m: Mutant) -> bool:
        if m.module != self.module or m.function != self.function:
            return False
        if self.kind == "excluded":
            return True
        return _listed(self.original) == _norm(m.removed) and _listed(self.mutant) == _norm(m.added)


def _listed(edit: str) -> str:
    """An entry's line as the edit compares it: "(nothing)" (as --all prints a deleted line's
    mutant) is no line at all."""
    text = _norm([edit])
    return "" if text == "(nothing)" else text


def load_entries() -> list[Entry]:
    """mutation/equivalent.toml, one Entry per listed edit (an [[equivalent]] may list several
    mutants of one original line under ``mutants``, each still matched on its own)."""
    try:
        doc = tomllib.loads(EQUIVALENTS.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise Broken(f"mutation/equivalent.toml: {exc}") from None
    entries, problems = [], []
    for kind, required, optional in (
        ("equivalent", ("module", "function", "original", "reason"), ("mutant", "mutants")),
        ("excluded", ("module", "function", "reason"), ()),
    ):
        for i, item in enumerate(doc.get(kind, [])):
            where = f"[[{kind}]] #{i + 1} ({item.get('module')} {item.get('function')})"
            missing = [k for k in required if not isinstance(item.get(k), str) or not item[k].strip()]
            unknown = sorted(set(item) - set(required) - set(optional))
            edits = ([item["mutant"]] if "mutant" in item else []) + list(item.get("mutants", []))
            if kind == "equivalent" and (not edits or not all(isinstance(e, str) and e.strip() for e in edits)):
                missing.append("mutant (or mutants)")
            if missing or unknown:
                problems.append(
                    where
                    + (f": needs {', '.join(missing)}" if missing else "")
                    + (f": unknown keys {unknown}" if unknown else "")
                )
                continue
            fields = {k: item[k] for k in required}
            for edit in edits or [""]:
                entries.append(Entry(kind, mutant=edit, **fields))
    if problems:
        raise Broken("mutation/equivalent.toml: " + "; ".join(problems))
    return entries


def judge(mutants: list[Mutant], entries: list[Entry], modules: list[str], show_all: bool) -> int:
    rows, below, stale = [], [], []
    listed: dict[str, Entry] = {}
    for m in mutants:
        for e in entries:
            if e.matches(m):
                e.matched += 1
                if m.detected:
                    stale.append(
                        f"{e.module} {e.function}: `{e.original}` -> `{e.mutant}` is listed as equivalent "
                        f"but {m.name} is {m.status}: remove the entry"
                    )
                else:
                    listed[m.name] = e
                break
    stale += [
        f"{e.module} {e.function}: "
        + (f"`{e.original}` -> `{e.mutant}`" if e.kind == "equivalent" else "(excluded function)")
        + " matches no mutant: the code changed; "
        "update or remove the entry"
        for e in entries
        if e.matched == 0
    ]

    show_excluded = any(e.kind == "excluded" for e in entries)
    header = (
        ("module", "mutants", "killed", "of them pytest crashed", "survived", "equivalent")
        + (("excluded",) if show_excluded else ())
        + ("score", "floor")
    )
    for module in modules:
        mine = [m for m in mutants if m.module == module]
        excluded = [m for m in mine if m.name in listed and listed[m.name].kind == "excluded"]
        equivalent = [m for m in mine if m.name in listed and listed[m.name].kind == "equivalent"]
        killed = [m for m in mine if m.detected]
        survivors = [m for m in mine if not m.detected and m.name not in listed]
        judged = len(mine) - len(excluded) - len(equivalent)
        score = 100.0 * len(killed) / judged if judged else 100.0
        floor = FLOORS.get(module, DEFAULT_FLOOR)
        crashed = [m for m in killed if m.exit_code in PYTEST_CRASHED]
        rows.append(
            (module, str(len(mine)), str(len(killed)), str(len(crashed)), str(len(survivors)), str(len(equivalent)))
            + ((str(len(excluded)),) if show_excluded else ())
            + (f"{score:.1f}%", f"{floor:.0f}%")
        )
        if score < floor or (show_all and survivors):
            below.append((module, score, floor, survivors))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    timeouts = sum(
        1 for m in mutants if m.exit_code not in PYTEST_CRASHED and (m.exit_code in TIMEOUT or m.exit_code in CRASHED)
    )
    if timeouts:
        print(f"(killed includes {timeouts} mutant(s) whose tests timed out or segfaulted)")
    if any(m.exit_code in PYTEST_CRASHED for m in mutants):
        print(
            '("pytest crashed": the mutant broke pytest itself, e.g. the plugin\'s option parsing; CI fails on it,'
            " but no test judged it)"
        )

    failed = False
    for module, score, floor, survivors in below:
        failed |= score < floor
        what = "BELOW ITS FLOOR" if score < floor else "above its floor"
        print(
            f"\n{module}: {score:.1f}% is {what} ({floor:.0f}%); {len(survivors)} unexplained survivor(s) "
            "(kill each with a test of the behaviour it changes, or list it in mutation/equivalent.toml "
            "with why no test can tell it apart):"
        )
        for m in survivors:
            print(f"  {m.path}:{m.line} {m.function} [{m.status}, {m.name.rpartition('.')[2]}]")
            print(f"      - {_norm(m.removed) or '(nothing)'}")
            print(f"      + {_norm(m.added) or '(nothing)'}")
    if stale:
        print("\nerror: mutation/equivalent.toml is out of date:")
        for s in stale:
            print(f"  {s}")
        return 2
    return 1 if failed else 0


# environment variables that change which tests run, or how
ENVIRONMENT = ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")


def run_inputs() -> dict[str, str]:
    """What a mutation run's verdict depends on: every file mutmut copies (sha256 by path,
    bytecode caches aside), the settings, the Python, every installed distribution's version,
    the environment variables that steer pytest, and what each backend finds on this machine.
    Raises OSError where a file cannot be read or is not a plain file (links are not followed)."""
    from fixtures.options import BACKENDS, backend_problem
    from trtbench.files import file_sha256

    config = mutmut_config()
    inputs = {}
    for top in [*config["source_paths"], *config["also_copy"], "requirements.txt"]:
        for path in _plain_files(ROOT / top):
            name = path.relative_to(ROOT).as_posix()
            if name != RECORD_NAME:
                inputs[name] = file_sha256(path)
    inputs["[tool.mutmut]"] = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    inputs["python"] = f"{platform.python_version()} {platform.machine()}"
    for dist in importlib.metadata.distributions():
        inputs[f"installed {dist.metadata['Name']}"] = dist.version
    for variable in ENVIRONMENT:
        if variable in os.environ:
            inputs[f"environment {variable}"] = os.environ[variable]
    for backend in BACKENDS:
        inputs[f"backend {backend}"] = backend_problem(backend) or "runs here"
    return inputs


def _plain_files(top: Path) -> Iterator[Path]:
    """The files below ``top`` (or ``top`` itself), sorted, without __pycache__."""
    if top.is_symlink():
        raise OSError(f"{top.relative_to(ROOT)} is a link")
    if top.is_file():
        yield top
    for folder, dirs, files in os.walk(top):  # nothing for a file or a missing path
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for path in (Path(folder) / name for name in [*dirs, *sorted(files)]):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise OSError(f"{path.relative_to(ROOT)} is not a plain file or folder")
            if path.is_file() and path.suffix != ".pyc":
                yield path


def recorded_verdict(inputs: dict[str, str]) -> tuple[dict | None, str]:
    """The record when its inputs are exactly these (else None), and why it does or does not apply."""
    try:
        record = json.loads(RECORD.read_text())
        recorded = record["inputs"]
        table, seconds, day = record["table"], record["seconds"], record["recorded"]
        if not (isinstance(recorded, dict) and isinstance(table, list) and all(isinstance(x, str) for x in table)):
            raise TypeError("inputs must be a table and table a list of lines")
    except FileNotFoundError:
        return None, f"no {RECORD_NAME}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{RECORD_NAME} is unreadable ({exc!r})"
    changed = sorted(k for k in inputs.keys() | recorded.keys() if inputs.get(k) != recorded.get(k))
    if changed:
        shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
        return None, f"inputs changed since the recorded run of {day}: {shown}"
    return record, f"every input ({len(inputs)}) is that of the recorded passing run of {day} ({seconds} s)"


def write_record(inputs: dict[str, str], table: str, seconds: int) -> None:
    from trtbench.files import write_atomic

    record = {
        "recorded": datetime.date.today().isoformat(),
        "seconds": seconds,
        "table": table.strip("\n").splitlines(),
        "inputs": inputs,
    }
    write_atomic(RECORD, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--again", action="store_true", help="judge the results left in mutants/ without running mutmut"
    )
    parser.add_argument("--all", action="store_true", help="list the unexplained survivors of every module")
    parser.add_argument(
        "--force", action="store_true", help="run even when every input is that of mutation/record.json"
    )
    parser.add_argument(
        "--max-children", type=int, default=os.cpu_count() or 2, help="parallel mutant runs (default: the CPU count)"
    )
    args = parser.parse_args(argv)
    paths = list(mutmut_config()["only_mutate"])
    start = time.monotonic()
    try:
        entries = load_entries()  # before the run: a broken file fails in a second, not after minutes
    except Broken as exc:
        print(f"error: {exc}")
        return 2
    inputs = None
    if not args.again:
        try:
            inputs = run_inputs()
            record, why = recorded_verdict(inputs)
        except OSError as exc:
            record, why = None, f"its inputs cannot be hashed ({exc})"
        if record is not None and not args.force:
            print(f"mutation testing: {why}; its table:\n")
            print("\n".join(record["table"]))
            print("\nmutation testing: passed (the recorded verdict; --force runs it again)")
            return 0
        print(f"mutation testing runs: {'--force' if record is not None else why}")
        print(
            f"mutmut run over {len(paths)} modules ({args.max_children} at a time; log: {os.path.relpath(LOG, ROOT)})",
            flush=True,
        )
        status = run_mutmut(args.max_children)
        if status != 0:
            tail = LOG.read_text(errors="replace").replace("\r", "\n").splitlines()[-40:]
            print("\n".join(tail))
            print(f"error: mutmut run exited with {status}")
            return 2
    try:
        mutants = load_mutants(paths)
    except Broken as exc:
        print(f"error: {exc}")
        return 2
    unchecked = [m.name for m in mutants if m.exit_code is None]
    if unchecked:
        print(f"error: {len(unchecked)} mutant(s) were never run (e.g. {unchecked[0]}): the mutmut run was cut short")
        if not args.again:
            return 2
        mutants = [m for m in mutants if m.exit_code is not None]
    describe_edits([m for m in mutants if not m.detected])
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        status = judge(mutants, entries, [module_of(p) for p in paths], args.all)
    print(table.getvalue(), end="")
    if unchecked:
        status = 2  # judged what was run, for a look; no verdict on a run cut short
    seconds = round(time.monotonic() - start)
    if status == 0 and inputs is not None:
        try:
            write_record(inputs, table.getvalue(), seconds)
            print(f"(recorded in {RECORD_NAME}: commit it with the change)")
        except OSError as exc:  # the verdict stands; only its reuse is lost
            print(f"(not recorded: {exc}; the next run runs everything again)")
    print(f"\nmutation testing: {'passed' if status == 0 else 'FAILED'} in {seconds} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
