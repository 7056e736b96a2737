"""The GPU workflow (.github/workflows/gpu-benchmarks.yml), checked on a CPU machine.

It has no runner here, so CI checks what can be checked without one: the GitHub workflow
schema (check-jsonschema), zizmor's security audits (nothing above "low"), and the contract
this suite relies on (pinned actions, read-only token, fork pull requests kept off the
self-hosted runners, every backend required, history saved only from main, the history branch
written only by a push to main from the one job that may write; the A/B gate of pull requests
in a matrix over the declared GPU runner types and their shards, concurrency per runner type
and shard, every shard's folder uploaded whatever it found, one verdict per type that runs
even after a failed shard). Negative controls prove each check fails on a broken copy. The
steps that decide (expanding the runner types, one shard's gate, the merge of the shards)
are run here as bash runs them on the runner, with `trtbench` stubbed where a GPU would be
needed and real where it is not (the merge). Both tools come from requirements.txt; a missing
tool is a failure, not a skip, so the check can never pass by not running.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from trtbench import ab
from trtbench.checkouts import Checkout
from trtbench.stats import decide_ab

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "gpu-benchmarks.yml"
SEVERITY = {"unknown": 0, "informational": 1, "low": 2, "medium": 3, "high": 4}
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"
PYTEST_RUN = re.compile(r"\bpython3? -m pytest\b")  # the step that runs the suite
MAIN_PUSH = ("github.event_name == 'push'", "github.ref == 'refs/heads/main'")
MAIN = "refs/heads/main"
FEATURE = "refs/heads/feature"
PR_REF = "refs/pull/1/merge"
CASES = [  # (event, github.ref, head branch in this repository)
    ("push", MAIN, True),
    ("push", FEATURE, True),
    ("workflow_dispatch", MAIN, True),
    ("workflow_dispatch", FEATURE, True),
    ("pull_request", PR_REF, True),
    ("pull_request", PR_REF, False),
]
TRUSTED_PR = ("pull_request", PR_REF, True)
AB_RUN = re.compile(r"\btrtbench ab\b")  # the gate (a shard) or, with --merge, the verdict
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
GIT_PUSH = re.compile(r"\bgit\b[^\n]*\spush\b")  # a step that writes to the repository
TOKEN = re.compile(r"github\.token|secrets\.GITHUB_TOKEN")
INSTALL_HINT = "install the CPU requirements: python3 -m pip install -r requirements.txt"


# ---------------------------------------------------------------------------- helpers


def load(text: str) -> dict[str, Any]:
    """Parse workflow YAML as GitHub does (YAML 1.2: the key `on` stays a string).

    ruamel.yaml comes with check-jsonschema (requirements.txt); PyYAML is not required.
    """
    try:
        from ruamel.yaml import YAML
    except ImportError:
        pytest.fail(f"ruamel.yaml (a dependency of check-jsonschema) is missing: {INSTALL_HINT}")
    doc = YAML(typ="safe", pure=True).load(io.StringIO(text))
    assert isinstance(doc, dict), f"workflow is not a YAML mapping: {type(doc).__name__}"
    return doc


def tool(name: str) -> str:
    """A console script of this interpreter's environment, else one on PATH."""
    for candidate in (Path(sys.executable).parent / name, shutil.which(name)):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail(f"{name} not found next to {sys.executable} nor on PATH: {INSTALL_HINT}")


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        pytest.fail(f"check-jsonschema is not installed: {INSTALL_HINT}")
    return run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)])


def zizmor(path: Path, persona: str = "regular") -> list[dict[str, Any]]:
    """zizmor's findings on one workflow, offline, ignoring any config or ignore comment."""
    proc = run(
        [
            tool("zizmor"),
            "--offline",
            "--no-config",
            "--no-ignores",
            "--persona",
            persona,
            "--format",
            "json",
            "--color",
            "never",
            str(path),
        ]
    )
    # 0: no finding; 10-14: findings, by highest severity; anything else: zizmor itself failed
    assert proc.returncode == 0 or 10 <= proc.returncode <= 14, (
        f"zizmor failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    try:
        findings = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        pytest.fail(f"zizmor printed no JSON ({exc}):\n{proc.stdout}\n{proc.stderr}")
    assert isinstance(findings, list), f"unexpected zizmor JSON: {proc.stdout[:500]}"
    assert f"completed {path}" in proc.stderr, f"zizmor did not report auditing {path}:\n{proc.stderr}"
    return findings


def severity(finding: dict[str, Any]) -> str:
    return str(finding["determinations"]["severity"]).lower()


def describe(finding: dict[str, Any]) -> str:
    where = finding["locations"][0]["concrete"]["location"]["start_point"] if finding.get("locations") else {}
    return f"{finding['ident']} ({severity(finding)}): {finding['desc']} at line {where.get('row', -1) + 1}"


def steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in doc["jobs"].items() for step in job.get("steps", [])]


def uses_of(doc: dict[str, Any]) -> list[str]:
    """Every `uses:` (steps, and jobs that call a reusable workflow)."""
    found = [step["uses"] for _, step in steps(doc) if "uses" in step]
    return found + [job["uses"] for job in doc["jobs"].values() if "uses" in job]


def write_scopes(permissions: Any) -> list[str]:
    if permissions is None:
        return ["(absent: the default token permissions apply)"]
    if isinstance(permissions, str):  # read-all / write-all: broader than any scope this needs
        return [f"{permissions} (name the scopes instead)"]
    return [f"{scope}: {level}" for scope, level in permissions.items() if level not in ("read", "none")]


def job_runs(condition: str, event: str, same_repo: bool, ref: str = MAIN) -> bool:
    """Evaluate a job's `if:` for one event on one ref; only event-name, ref and fork-guard tests
    and always() (true: whatever the jobs it needs did) are understood.

    Anything else raises ValueError, so an unusual condition is flagged rather than trusted.
    """
    expr = " ".join(str(condition).split()).removeprefix("${{").removesuffix("}}")
    expr = expr.replace(FORK_GUARD, f" {same_repo} ")
    expr = re.sub(r"\balways\(\)", " True ", expr)
    expr = re.sub(
        r"github\.event_name\s*(==|!=)\s*'([\w-]+)'",
        lambda m: f" {(m.group(2) == event) == (m.group(1) == '==')} ",
        expr,
    )
    expr = re.sub(
        r"github\.ref\s*(==|!=)\s*'([\w/.-]+)'", lambda m: f" {(m.group(2) == ref) == (m.group(1) == '==')} ", expr
    )
    expr = re.sub(r"!(?!=)", " not ", expr.replace("&&", " and ").replace("||", " or "))
    if not re.fullmatch(r"[\s()]*(?:(?:True|False|and|or|not)[\s()]*)*", expr):
        raise ValueError(f"condition not understood: {condition!r}")
    return bool(eval(expr or "True", {"__builtins__": {}}))  # only True/False/and/or/not/() are left


def runs_for(condition: Any) -> set[tuple[str, str, bool]]:
    """The CASES a job's `if:` lets through (ValueError for a condition not understood)."""
    text = " ".join(str(condition or "").split())
    return {case for case in CASES if job_runs(text, case[0], same_repo=case[2], ref=case[1])}


def described(cases: set[tuple[str, str, bool]]) -> str:
    return ", ".join(f"{e} on {r}{'' if same else ' from a fork'}" for e, r, same in sorted(cases)) or "nothing"


def contract_problems(text: str) -> list[str]:
    """What breaks this suite's contract with the GPU runner, in words; [] when none."""
    return comment_problems(text) + doc_problems(load(text))


def comment_problems(text: str) -> list[str]:
    """Each pinned `uses:` line names its release in a trailing `# vX.Y.Z` comment."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        match = USES_LINE.match(line)
        if match and PINNED.match(match.group(1)) and not re.search(r"#\s*v\d+\.\d+\.\d+\b", match.group(2)):
            problems.append(f"line {number}: pinned uses without a '# vX.Y.Z' comment")
    return problems


def doc_problems(doc: dict[str, Any]) -> list[str]:
    """The contract on the parsed workflow."""
    problems = []
    on = doc.get("on") or {}
    triggers = [on] if isinstance(on, str) else list(on)  # `on:` is a name, a list or a mapping

    # Pinned actions: a full commit SHA (comment_problems checks the release comment).
    for ref in uses_of(doc):
        if not ref.startswith("./") and not PINNED.match(ref):
            problems.append(f"uses {ref}: not pinned to a 40-hex commit SHA")

    # Read-only token, at the top and in every job but the history writer (below).
    writers = history_writers(doc)
    problems += [f"top-level permissions {s}" for s in write_scopes(doc.get("permissions"))]
    for job_id, job in doc["jobs"].items():
        if "permissions" in job:
            scopes = write_scopes(job["permissions"])
            allowed = ["contents: write"] if job_id in writers else []
            problems += [f"job {job_id} permissions {s}" for s in scopes if s not in allowed]
    problems += history_problems(doc, writers)

    # Fork pull requests never reach the self-hosted runners; main's pushes and dispatches run the
    # suite as history, trusted pull requests the A/B gate and its verdict, and nothing else.
    bench_jobs = {job_id for job_id, step in steps(doc) if PYTEST_RUN.search(str(step.get("run", "")))}
    expected = {  # job -> (cases it must run for, cases it must run for and no other: None = any other)
        **{job_id: ({("push", MAIN, True), ("workflow_dispatch", MAIN, True)}, None) for job_id in bench_jobs},
        **{job_id: ({TRUSTED_PR}, {TRUSTED_PR}) for job_id in gate_jobs(doc) | verdict_jobs(doc)},
    }
    for job_id, job in doc["jobs"].items():
        condition = " ".join(str(job.get("if", "")).split())
        try:
            if (
                "pull_request" in triggers
                and job_runs(condition, "pull_request", same_repo=True)
                and FORK_GUARD not in condition
            ):
                problems.append(f"job {job_id}: runs pull requests without '{FORK_GUARD}' in its if")
            if job_runs(condition, "pull_request", same_repo=False):
                problems.append(f"job {job_id}: runs a fork's pull request (if: {condition!r})")
            cases = runs_for(condition)
        except ValueError as exc:
            problems.append(f"job {job_id}: {exc}")
            continue
        needed, only = expected.get(job_id, (set(), None))
        if needed - cases:
            problems.append(f"job {job_id}: never runs for {described(needed - cases)} (if: {condition!r})")
        if job_id in bench_jobs and any(event == "pull_request" for event, _, _ in cases):
            problems.append(f"job {job_id}: runs the suite as history for pull requests (they get the gate)")
        if only is not None and cases - only:
            problems.append(f"job {job_id}: runs for {described(cases - only)}, not only for trusted pull requests")
        if "pull_request_target" in triggers or "workflow_run" in triggers:
            problems.append("pull_request_target/workflow_run would run fork code with this repository's rights")
        if not isinstance(job.get("timeout-minutes"), int) or job["timeout-minutes"] <= 0:
            problems.append(f"job {job_id}: no timeout-minutes (a hung runner would hold its GPU for 6 hours)")

    env = doc.get("env") or {}
    if str(env.get("BENCH_BACKEND", "")) != "all":
        problems.append(f"env BENCH_BACKEND is {env.get('BENCH_BACKEND')!r}, not 'all' (both backends required)")

    pytest_runs = [step["run"] for _, step in steps(doc) if PYTEST_RUN.search(str(step.get("run", "")))]
    if len(pytest_runs) != 1:
        problems.append(f"expected one pytest step, found {len(pytest_runs)}")
    for command in pytest_runs:
        for flag in (
            '--backend "$BENCH_BACKEND"',
            "--regression-baseline latest",
            "--benchmark-autosave",
            "-p no:xdist",
            "--benchmark-json",
            "--engine-cache-dir",
        ):
            if flag not in command:
                problems.append(f"pytest step lacks {flag}")

    problems += gpu_problems(doc) + gate_problems(doc) + verdict_problems(doc)

    for job_id, step in steps(doc):
        name = step.get("name") or step.get("uses") or "step"
        if "${{" in str(step.get("run", "")):
            problems.append(f"{job_id}/{name}: ${{{{ }}}} expanded inside run: (pass it through env:)")
        uses = str(step.get("uses", ""))
        with_ = step.get("with") or {}
        if uses.startswith("actions/checkout@") and with_.get("persist-credentials") not in (False, "false"):
            problems.append(f"{job_id}/{name}: checkout without persist-credentials: false")
        if uses.startswith("actions/cache@"):
            problems.append(f"{job_id}/{name}: actions/cache saves from every run; use cache/restore + cache/save")
        if uses.startswith("actions/cache/save@"):
            condition = " ".join(str(step.get("if", "")).split())
            if not all(part in condition for part in MAIN_PUSH):
                problems.append(f"{job_id}/{name}: saves history outside a push to main (if: {condition!r})")
        if (
            uses.startswith("actions/upload-artifact@")
            and ".benchmarks" in str(with_.get("path", ""))
            and with_.get("include-hidden-files") not in (True, "true")
        ):
            problems.append(f"{job_id}/{name}: .benchmarks/ is hidden and skipped without include-hidden-files")
    return problems


def norm(value: Any) -> str:
    return " ".join(str(value).split())


def is_expression(value: Any, expression: str) -> bool:
    """Whether a value is exactly `${{ expression }}` (spacing aside)."""
    match = EXPRESSION.fullmatch(norm(value))
    return bool(match) and match.group(1).replace(" ", "") == expression.replace(" ", "")


def gate_jobs(doc: dict[str, Any]) -> set[str]:
    """Jobs with a step that runs one shard of the A/B gate."""
    return {
        job_id
        for job_id, step in steps(doc)
        if AB_RUN.search(str(step.get("run", ""))) and "--merge" not in step["run"]
    }


def verdict_jobs(doc: dict[str, Any]) -> set[str]:
    """Jobs with a step that merges the shards of the gate."""
    return {
        job_id for job_id, step in steps(doc) if AB_RUN.search(str(step.get("run", ""))) and "--merge" in step["run"]
    }


def needs_of(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def gpu_problems(doc: dict[str, Any]) -> list[str]:
    """Every job on a GPU runner runs on a declared runner type, from the plan's matrix, in a
    concurrency group of its runner type (never one group for the whole repository)."""
    problems = []
    for job_id, job in doc["jobs"].items():
        runs_on = norm(job.get("runs-on", ""))
        if "self-hosted" not in runs_on and "matrix.labels" not in runs_on:
            continue
        if not is_expression(job.get("runs-on"), "matrix.labels"):
            problems.append(
                f"job {job_id}: runs-on {job.get('runs-on')!r} is not the declared runner type's labels "
                "(${{ matrix.labels }})"
            )
        matrix = (job.get("strategy") or {}).get("matrix")
        if not (
            is_expression(matrix, "fromJSON(needs.plan.outputs.types)")
            or is_expression(matrix, "fromJSON(needs.plan.outputs.gate)")
        ) or "plan" not in needs_of(job):
            problems.append(
                f"job {job_id}: matrix {matrix!r} is not from the declared runner types (needs.plan.outputs)"
            )
        group = (
            norm((job.get("concurrency") or {}).get("group", "")) if isinstance(job.get("concurrency"), dict) else ""
        )
        if "matrix.type" not in group:
            problems.append(
                f"job {job_id}: concurrency group {group!r} is not per runner type (it serialises every runner)"
            )
    return problems


def gate_problems(doc: dict[str, Any]) -> list[str]:
    """One gate job: per runner type and shard, superseded pushes cancelled, the full history
    checked out, `trtbench ab --shard` from the matrix, its folder uploaded whatever it found,
    then the job fails on the shard's exit status."""
    jobs = sorted(gate_jobs(doc))
    if len(jobs) != 1:
        return [f"expected one gate job (trtbench ab without --merge), found {jobs}"]
    job_id = jobs[0]
    job = doc["jobs"][job_id]
    problems = []
    if not is_expression((job.get("strategy") or {}).get("matrix"), "fromJSON(needs.plan.outputs.gate)"):
        problems.append(f"job {job_id}: matrix is not every declared runner type x shard (needs.plan.outputs.gate)")
    concurrency = job.get("concurrency") if isinstance(job.get("concurrency"), dict) else {}
    group = norm(concurrency.get("group", ""))
    if not all(part in group for part in ("matrix.type", "matrix.shard", "github.ref")):
        problems.append(f"job {job_id}: concurrency group {group!r} is not per runner type, shard and pull request")
    if concurrency.get("cancel-in-progress") is not True:
        problems.append(f"job {job_id}: a new push does not cancel the older push's shard (cancel-in-progress)")
    job_steps = job.get("steps", [])
    checkouts = [s for s in job_steps if str(s.get("uses", "")).startswith("actions/checkout@")]
    if not checkouts or any(str((s.get("with") or {}).get("fetch-depth")) != "0" for s in checkouts):
        problems.append(f"job {job_id}: checkout without fetch-depth: 0 (the merge base needs the history)")
    index, step = next((i, s) for i, s in enumerate(job_steps) if AB_RUN.search(str(s.get("run", ""))))
    command, env = str(step["run"]), step.get("env") or {}
    shard = re.search(r'--shard\s+"\$\{?(\w+)\}?/\$\{?(\w+)\}?"', command)
    if not (
        shard
        and is_expression(env.get(shard.group(1)), "matrix.shard")
        and is_expression(env.get(shard.group(2)), "matrix.shards")
    ):
        problems.append(
            f'job {job_id}: trtbench ab lacks --shard "$I/$N" with I, N from matrix.shard, matrix.shards (env)'
        )
    for flag in ("--base ", "--head HEAD", "--budget ", '-- --backend "$BENCH_BACKEND"'):
        if flag not in command:
            problems.append(f"job {job_id}: trtbench ab lacks {flag.strip()}")
    out = re.search(r'--out\s+"\$\{?(\w+)\}?"', command)
    folder = norm(env.get(out.group(1), "")) if out else ""
    if not ("matrix.type" in folder and "matrix.shard" in folder):
        problems.append(f"job {job_id}: trtbench ab --out is not a folder per runner type and shard ({folder!r})")
    uploads = [
        i
        for i, s in enumerate(job_steps)
        if i > index
        and str(s.get("uses", "")).startswith("actions/upload-artifact@")
        and folder
        and norm((s.get("with") or {}).get("path", "")).rstrip("/") == folder
    ]
    if not uploads or "always()" not in norm(job_steps[uploads[0]].get("if", "")):
        problems.append(
            f"job {job_id}: the shard's folder is not uploaded with if: always() (a failed shard keeps nothing)"
        )
    else:
        verdict_steps = [
            s
            for s in job_steps[uploads[0] + 1 :]
            if "always()" in norm(s.get("if", ""))
            and step.get("id")
            and f"steps.{step['id']}.outputs." in json.dumps(s.get("env") or {})
        ]
        if not verdict_steps:
            problems.append(f"job {job_id}: no step after the upload fails the job on the shard's exit status")
    return problems


def verdict_problems(doc: dict[str, Any]) -> list[str]:
    """One verdict job per runner type: after every shard, even failed ones, it merges them."""
    jobs = sorted(verdict_jobs(doc))
    if len(jobs) != 1:
        return [f"expected one verdict job (trtbench ab --merge), found {jobs}"]
    job_id = jobs[0]
    job = doc["jobs"][job_id]
    problems = []
    if not set(gate_jobs(doc)) <= set(needs_of(job)):
        problems.append(f"job {job_id}: does not need the gate (it would merge before the shards end)")
    if "always()" not in norm(job.get("if", "")):
        problems.append(f"job {job_id}: no always() in its if: a failed shard would skip the verdict")
    if not is_expression((job.get("strategy") or {}).get("matrix"), "fromJSON(needs.plan.outputs.types)"):
        problems.append(f"job {job_id}: matrix is not one verdict per declared runner type (needs.plan.outputs.types)")
    downloads = [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith("actions/download-artifact@")]
    if not downloads or not all("matrix.type" in norm((s.get("with") or {}).get("pattern", "")) for s in downloads):
        problems.append(f"job {job_id}: does not download its own runner type's shards (pattern with matrix.type)")
    return problems


def history_writers(doc: dict[str, Any]) -> set[str]:
    """Jobs with a step that pushes to the repository (the history branch)."""
    return {job_id for job_id, step in steps(doc) if GIT_PUSH.search(str(step.get("run", "")))}


def history_problems(doc: dict[str, Any], writers: set[str]) -> list[str]:
    """The history branch is written by one job, only for a push to main, after the benchmarks
    passed, from a GitHub-hosted runner, with the token given to the pushing step alone."""
    problems = []
    if len(writers) != 1:
        problems.append(f"expected one job that pushes the history, found {sorted(writers)}")
    for job_id in sorted(writers):
        job = doc["jobs"][job_id]
        condition = " ".join(str(job.get("if", "")).split())
        try:
            runs_for = {
                (event, ref): job_runs(condition, event, same_repo=True, ref=ref)
                for event in ("push", "workflow_dispatch", "pull_request")
                for ref in (MAIN, "refs/heads/feature")
            }
        except ValueError as exc:
            problems.append(f"job {job_id}: {exc}")
            continue
        outside = sorted(
            f"{event} on {ref}" for (event, ref), runs in runs_for.items() if runs and (event, ref) != ("push", MAIN)
        )
        if outside or not runs_for[("push", MAIN)]:
            problems.append(
                f"job {job_id}: writes the history outside a push to main ({', '.join(outside) or 'never'})"
            )
        if "benchmarks" not in ([job.get("needs")] if isinstance(job.get("needs"), str) else job.get("needs") or []):
            problems.append(f"job {job_id}: writes the history without needs: benchmarks (a failed run would be kept)")
        if "self-hosted" in str(job.get("runs-on", "")):
            problems.append(f"job {job_id}: a token that may write on the self-hosted runner")
        if write_scopes(job.get("permissions")) != ["contents: write"]:
            problems.append(f"job {job_id}: permissions {job.get('permissions')!r}, expected contents: write alone")
    for job_id, step in steps(doc):
        name = step.get("name") or step.get("uses") or "step"
        if TOKEN.search(json.dumps(step)) and not GIT_PUSH.search(str(step.get("run", ""))):
            problems.append(f"{job_id}/{name}: the token is given to a step that does not push")
    return problems


@pytest.fixture(scope="module")
def text() -> str:
    return WORKFLOW.read_text()


# ---------------------------------------------------------------------------- the real file


def test_workflow_matches_github_schema():
    proc = check_jsonschema(WORKFLOW)
    assert proc.returncode == 0, f"check-jsonschema (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    assert "ok" in proc.stdout, proc.stdout


def test_zizmor_finds_nothing_above_low():
    findings = zizmor(WORKFLOW)
    bad = [describe(f) for f in findings if SEVERITY.get(severity(f), 0) > SEVERITY["low"]]
    assert not bad, "zizmor findings above low:\n" + "\n".join(bad)


def test_zizmor_really_audited_the_jobs(text, tmp_path):
    # Positive control: an injection planted in every job is reported in every job, so an empty
    # answer above cannot come from zizmor not reading them (the GPU jobs' runs-on comes from the
    # plan's matrix, so the auditor persona's self-hosted-runner finding no longer shows them).
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    doc = yaml.load(text)
    for job in doc["jobs"].values():
        job["steps"].append({"name": "planted", "run": "echo ${{ github.event.pull_request.title }}"})
    planted = tmp_path / "gpu-benchmarks.yml"
    with planted.open("w") as stream:
        yaml.dump(doc, stream)
    findings = zizmor(planted)
    flagged = {
        f["locations"][0]["symbolic"]["route"]["route"][1]["Key"]
        for f in findings
        if f["ident"] == "template-injection" and SEVERITY[severity(f)] > SEVERITY["low"]
    }
    assert flagged == set(load(text)["jobs"]), [describe(f) for f in findings]


def test_workflow_contract(text):
    problems = contract_problems(text)
    assert not problems, "workflow contract broken:\n" + "\n".join(problems)


def test_contract_sees_the_actual_steps(text):
    doc = load(text)
    assert set(doc["on"]) == {"push", "pull_request", "workflow_dispatch"}
    assert {ref.split("@")[0] for ref in uses_of(doc)} == {
        "actions/checkout",
        "actions/cache/restore",
        "actions/cache/save",
        "actions/upload-artifact",
        "actions/download-artifact",
    }
    jobs = doc["jobs"]
    assert set(jobs) == {"plan", "gate", "verdict", "benchmarks", "history"}
    assert gate_jobs(doc) == {"gate"} and verdict_jobs(doc) == {"verdict"}
    assert {job_id for job_id, step in steps(doc) if PYTEST_RUN.search(step.get("run", ""))} == {"benchmarks"}
    for job_id in ("gate", "benchmarks"):  # the GPU jobs: on the declared runner types
        assert is_expression(jobs[job_id]["runs-on"], "matrix.labels") and jobs[job_id]["timeout-minutes"] > 0
    for job_id in ("plan", "verdict", "history"):  # no GPU needed: GitHub-hosted
        assert jobs[job_id]["runs-on"] == "ubuntu-24.04"
    declared = json.loads(doc["env"]["GPU_RUNNER_TYPES"])
    assert declared == [{"type": "h200", "labels": ["self-hosted", "linux", "gpu", "h200"], "shards": 1, "budget": 20}]
    assert doc["permissions"] == {"contents": "read"}
    assert all(jobs[j]["permissions"] == {"contents": "read"} for j in ("plan", "gate", "verdict", "benchmarks"))
    assert history_writers(doc) == {"history"}
    history = jobs["history"]
    assert history["permissions"] == {"contents": "write"}
    pushes = [s for s in history["steps"] if GIT_PUSH.search(s.get("run", ""))]
    assert len(pushes) == 1 and "benchmark-history" in pushes[0]["run"] and TOKEN.search(str(pushes[0]["env"]))
    assert any("trtbench.commands.trends" in s.get("run", "") for s in history["steps"])
    assert any(
        re.search(r"\btrtbench prune \.benchmarks --keep\b", s.get("run", "")) for s in jobs["benchmarks"]["steps"]
    )


# ---------------------------------------------------------------------------- negative controls


def _first_checkout(text: str) -> str:
    match = re.search(r"actions/checkout@[0-9a-f]{40}( # v[\d.]+)?", text)
    assert match, "no pinned actions/checkout in the workflow"
    return match.group(0)


def test_zizmor_flags_an_unpinned_copy(text, tmp_path):
    broken = tmp_path / "gpu-benchmarks.yml"
    broken.write_text(text.replace(_first_checkout(text), "actions/checkout@v4", 1))
    findings = zizmor(broken)
    unpinned = [f for f in findings if f["ident"] == "unpinned-uses"]
    assert unpinned and all(SEVERITY[severity(f)] > SEVERITY["low"] for f in unpinned), [describe(f) for f in findings]
    assert any("not pinned" in p for p in contract_problems(broken.read_text()))


def test_schema_check_rejects_a_broken_copy(text, tmp_path):
    broken = tmp_path / "gpu-benchmarks.yml"
    broken.write_text(text.replace("timeout-minutes: 60", "timeout-minutes: sixty", 1))
    assert broken.read_text() != text
    proc = check_jsonschema(broken)
    assert proc.returncode != 0 and "timeout-minutes" in proc.stdout, proc.stdout


MUTATIONS = {  # change -> the problem it must produce
    "write permission": "permissions actions: write",
    "no permissions": "top-level permissions (absent",
    "no fork guard": "runs pull requests without",
    "fork guard bypassed": "runs a fork's pull request",
    "unknown condition": "condition not understood",
    "pull_request_target": "pull_request_target/workflow_run",
    "backend torch": "BENCH_BACKEND is 'torch'",
    "no --backend": 'lacks --backend "$BENCH_BACKEND"',
    "no baseline": "lacks --regression-baseline latest",
    "expression in run": "expanded inside run:",
    "persisted credentials": "without persist-credentials: false",
    "save on PRs": "saves history outside a push to main",
    "hidden history skipped": "without include-hidden-files",
    "tag instead of SHA": "not pinned to a 40-hex commit SHA",
    "history on every push": "writes the history outside a push to main (push on refs/heads/feature)",
    "history on dispatch": "workflow_dispatch on refs/heads/main)",
    "history from a pull request": "writes the history outside a push to main (pull_request on",
    "history without the benchmarks": "without needs: benchmarks",
    "history on the self-hosted runner": "a token that may write on the self-hosted runner",
    "history may write more": "job history permissions actions: write",
    "write in the benchmark job": "job benchmarks permissions contents: write",
    "push from the benchmark job": "expected one job that pushes the history",
    "token to another step": "the token is given to a step that does not push",
    "no history on dispatch": "job benchmarks: never runs for workflow_dispatch on refs/heads/main",
    "history runs for pull requests": "job benchmarks: runs the suite as history for pull requests",
    "no timeout": "job verdict: no timeout-minutes",
    # the gate: trusted pull requests only, over the declared runner types and their shards
    "gate without fork guard": "job gate: runs pull requests without",
    "gate for forks too": "job gate: runs a fork's pull request",
    "gate on push": "job gate: runs for push on refs/heads/feature, push on refs/heads/main, not only",
    "gate never runs": "job gate: never runs for pull_request on refs/pull/1/merge",
    "gate on one fixed runner": "job gate: runs-on ['self-hosted', 'linux', 'gpu'] is not the declared",
    "gate matrix not declared": "job gate: matrix is not every declared runner type x shard",
    "gate without the plan": "job gate: matrix {'type': ['h200']} is not from the declared runner types",
    "one group for the repository": "job gate: concurrency group 'gpu-benchmarks' is not per runner type",
    "group per type, not shard": "concurrency group 'gpu-gate-${{ matrix.type }}-${{ github.ref }}' is not per",
    "superseded pushes kept": "job gate: a new push does not cancel",
    "benchmarks in one group": "job benchmarks: concurrency group 'gpu-benchmarks' is not per runner type",
    "shallow gate checkout": "job gate: checkout without fetch-depth: 0",
    "no shard argument": 'job gate: trtbench ab lacks --shard "$I/$N"',
    "shard from a constant": 'job gate: trtbench ab lacks --shard "$I/$N"',
    "gate without --head": "job gate: trtbench ab lacks --head HEAD",
    "gate without the backend": 'job gate: trtbench ab lacks -- --backend "$BENCH_BACKEND"',
    "one folder for every shard": "job gate: trtbench ab --out is not a folder per runner type and shard",
    "upload only on success": "job gate: the shard's folder is not uploaded with if: always()",
    "upload of another folder": "job gate: the shard's folder is not uploaded",
    "shard exit status ignored": "job gate: no step after the upload fails the job",
    # the verdict: one per runner type, after every shard, merged
    "verdict skipped after a failed shard": "job verdict: no always() in its if",
    "verdict before the shards": "job verdict: does not need the gate",
    "verdict for forks": "job verdict: runs pull requests without",
    "verdict on push": "job verdict: runs for push on refs/heads/feature, push on refs/heads/main, not",
    "verdict matrix not declared": "job verdict: matrix is not one verdict per declared runner type",
    "verdict of every type's shards": "job verdict: does not download its own runner type's shards",
    "verdict without merge": "expected one verdict job (trtbench ab --merge), found []",
}


def _step(job: dict[str, Any], predicate) -> dict[str, Any]:
    return next(s for s in job["steps"] if predicate(s))


def _uses(prefix: str):
    return lambda s: str(s.get("uses", "")).startswith(prefix)


def _mutate(doc: dict[str, Any], change: str) -> None:
    job = doc["jobs"]["benchmarks"]
    bench = _step(job, lambda s: PYTEST_RUN.search(s.get("run", "")))
    checkout = _step(job, _uses("actions/checkout@"))
    save = _step(job, _uses("actions/cache/save@"))
    upload = _step(job, _uses("actions/upload-artifact@"))
    history = doc["jobs"]["history"]
    gate, verdict = doc["jobs"]["gate"], doc["jobs"]["verdict"]
    shard = _step(gate, lambda s: AB_RUN.search(s.get("run", "")))
    merge = _step(verdict, lambda s: AB_RUN.search(s.get("run", "")))
    gate_upload = _step(gate, _uses("actions/upload-artifact@"))
    pr_only = f"github.event_name == 'pull_request' && {FORK_GUARD}"
    if change == "write permission":
        job["permissions"] = {"contents": "read", "actions": "write"}
    elif change == "no permissions":
        del doc["permissions"]
    elif change == "no fork guard":
        job["if"] = "github.event_name != 'schedule'"
    elif change == "fork guard bypassed":
        job["if"] = f"github.event_name == 'pull_request' || {FORK_GUARD}"
    elif change == "unknown condition":
        job["if"] = f"{FORK_GUARD} || contains(github.event.pull_request.labels.*.name, 'gpu')"
    elif change == "pull_request_target":
        doc["on"]["pull_request_target"] = None
    elif change == "backend torch":
        doc["env"]["BENCH_BACKEND"] = "torch"
    elif change == "no --backend":
        bench["run"] = bench["run"].replace('--backend "$BENCH_BACKEND" ', "")
    elif change == "no baseline":
        bench["run"] = bench["run"].replace("--regression-baseline latest", "")
    elif change == "expression in run":
        bench["run"] += "\necho ${{ github.event.pull_request.title }}"
    elif change == "persisted credentials":
        checkout.pop("with")
    elif change == "save on PRs":
        save["if"] = "success()"
    elif change == "hidden history skipped":
        upload["with"].pop("include-hidden-files")
    elif change == "tag instead of SHA":
        upload["uses"] = "actions/upload-artifact@v4"
    elif change == "history on every push":
        history["if"] = "github.event_name == 'push'"
    elif change == "history on dispatch":
        history["if"] = "github.ref == 'refs/heads/main'"
    elif change == "history from a pull request":
        history["if"] = f"github.event_name == 'push' || {FORK_GUARD}"
    elif change == "history without the benchmarks":
        del history["needs"]
    elif change == "history on the self-hosted runner":
        history["runs-on"] = ["self-hosted", "linux", "gpu"]
    elif change == "history may write more":
        history["permissions"]["actions"] = "write"
    elif change == "write in the benchmark job":
        job["permissions"] = {"contents": "write"}
    elif change == "push from the benchmark job":
        bench["run"] += "\ngit push origin HEAD:benchmark-history"
    elif change == "token to another step":
        trends_step = _step(history, lambda s: "trtbench.commands.trends" in s.get("run", ""))
        trends_step["env"] = {"GH_TOKEN": "${{ github.token }}"}
    elif change == "no history on dispatch":
        job["if"] = "github.event_name == 'push'"
    elif change == "history runs for pull requests":
        job["if"] = f"github.event_name == 'push' || github.event_name == 'workflow_dispatch' || ({pr_only})"
    elif change == "no timeout":
        del verdict["timeout-minutes"]
    elif change == "gate without fork guard":
        gate["if"] = "github.event_name == 'pull_request'"
    elif change == "gate for forks too":
        gate["if"] = f"github.event_name == 'pull_request' || {FORK_GUARD}"
    elif change == "gate on push":
        gate["if"] = f"github.event_name == 'push' || ({pr_only})"
    elif change == "gate never runs":
        gate["if"] = f"github.event_name == 'push' && {FORK_GUARD}"
    elif change == "gate on one fixed runner":
        gate["runs-on"] = ["self-hosted", "linux", "gpu"]
    elif change == "gate matrix not declared":
        gate["strategy"]["matrix"] = "${{ fromJSON(needs.plan.outputs.types) }}"
    elif change == "gate without the plan":
        gate["strategy"]["matrix"] = {"type": ["h200"]}
    elif change == "one group for the repository":
        gate["concurrency"] = {"group": "gpu-benchmarks", "cancel-in-progress": False, "queue": "max"}
    elif change == "group per type, not shard":
        gate["concurrency"]["group"] = "gpu-gate-${{ matrix.type }}-${{ github.ref }}"
    elif change == "superseded pushes kept":
        gate["concurrency"]["cancel-in-progress"] = False
    elif change == "benchmarks in one group":
        job["concurrency"]["group"] = "gpu-benchmarks"
    elif change == "shallow gate checkout":
        _step(gate, _uses("actions/checkout@"))["with"].pop("fetch-depth")
    elif change == "no shard argument":
        shard["run"] = re.sub(r'--shard "[^"]*" ', "", shard["run"])
    elif change == "shard from a constant":
        shard["env"]["SHARD"] = "1"
    elif change == "gate without --head":
        shard["run"] = shard["run"].replace("--head HEAD ", "")
    elif change == "gate without the backend":
        shard["run"] = shard["run"].replace('-- --backend "$BENCH_BACKEND" ', "-- ")
    elif change == "one folder for every shard":
        shard["env"]["AB_OUT"] = "ab"
    elif change == "upload only on success":
        del gate_upload["if"]
    elif change == "upload of another folder":
        gate_upload["with"]["path"] = "ab/"
    elif change == "shard exit status ignored":
        gate["steps"] = [s for s in gate["steps"] if "steps.ab.outputs" not in json.dumps(s.get("env") or {})]
    elif change == "verdict skipped after a failed shard":
        verdict["if"] = pr_only
    elif change == "verdict before the shards":
        verdict["needs"] = ["plan"]
    elif change == "verdict for forks":
        verdict["if"] = "always()"
    elif change == "verdict on push":
        verdict["if"] = f"always() && (github.event_name == 'push' || ({pr_only}))"
    elif change == "verdict matrix not declared":
        verdict["strategy"]["matrix"] = "${{ fromJSON(needs.plan.outputs.gate) }}"
    elif change == "verdict of every type's shards":
        _step(verdict, _uses("actions/download-artifact@"))["with"]["pattern"] = "ab-*"
    elif change == "verdict without merge":
        merge["run"] = merge["run"].replace("trtbench ab --merge", "cat")
    else:
        raise AssertionError(change)


@pytest.mark.parametrize("change", sorted(MUTATIONS))
def test_contract_rejects(change, text):
    doc = load(text)
    assert not doc_problems(doc)  # the control: the real file passes, so the problem comes from the change
    _mutate(doc, change)
    problems = doc_problems(doc)
    assert any(MUTATIONS[change] in p for p in problems), f"{change}: expected {MUTATIONS[change]!r} in {problems}"


def test_contract_rejects_a_pin_without_its_version_comment(text):
    pinned = _first_checkout(text)
    broken = text.replace(pinned, pinned.split(" #")[0], 1)
    assert not comment_problems(text)
    assert any("'# vX.Y.Z' comment" in p for p in comment_problems(broken))


# ---------------------------------------------------------------------------- the steps, run as bash runs them


def context_value(context: dict[str, Any], expression: str) -> str:
    if expression not in context:
        pytest.fail(f"${{{{ {expression} }}}}: not known to this test; give it a value in the context")
    return str(context[expression])


def step_env(doc: dict[str, Any], job_id: str, step: dict[str, Any], context: dict[str, Any]) -> dict[str, str]:
    """The variables GitHub gives a step: the workflow's env, the job's, the step's, expressions resolved."""
    env = {}
    for scope in (doc.get("env"), doc["jobs"][job_id].get("env"), step.get("env")):
        for key, value in (scope or {}).items():
            env[key] = EXPRESSION.sub(lambda m: context_value(context, m.group(1)), str(value))
    return env


def shim(folder: Path, name: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"#!/bin/sh\n{body}\n")
    (folder / name).chmod(0o755)


def run_step(
    doc: dict[str, Any], job_id: str, step: dict[str, Any], cwd: Path, context: dict[str, Any], **env: str
) -> subprocess.CompletedProcess[str]:
    """A `run:` step as the runner runs it (bash --noprofile --norc -eo pipefail FILE), with the
    shims of `bin` (next to cwd) first on PATH."""
    script = cwd.parent / f"step-{job_id}.sh"
    script.write_text(step["run"])
    shim(cwd.parent / "bin", "python3", f'exec "{sys.executable}" "$@"')
    variables = {
        "PATH": f"{cwd.parent / 'bin'}:/usr/bin:/bin",
        "HOME": str(cwd.parent),
        "LANG": "C.UTF-8",
        **step_env(doc, job_id, step, context),
        **env,
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd,
        env=variables,
        capture_output=True,
        text=True,
        timeout=300,
    )


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def plan(doc: dict[str, Any], tmp_path: Path, declaration: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """The plan job's step on a declaration of runner types: its exit and its outputs, parsed."""
    work = tmp_path / "plan"
    work.mkdir(exist_ok=True)
    out = tmp_path / "plan-output"
    out.write_text("")
    step = next(s for s in doc["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    proc = run_step(doc, "plan", step, work, {}, GPU_RUNNER_TYPES=declaration, GITHUB_OUTPUT=str(out))
    return proc, {key: json.loads(value) for key, value in outputs(out).items()}


def with_type(doc: dict[str, Any], **entry: Any) -> str:
    """The declared runner types, the first one changed (e.g. shards=3)."""
    types = json.loads(doc["env"]["GPU_RUNNER_TYPES"])
    types[0].update(entry)
    return json.dumps(types)


def matrix_context(entry: dict[str, Any]) -> dict[str, Any]:
    return {f"matrix.{key}": value for key, value in entry.items()}


def test_plan_expands_the_declared_runner_types(text, tmp_path):
    doc = load(text)
    job = doc["jobs"]["plan"]
    assert is_expression(job["outputs"]["types"], "steps.plan.outputs.types")
    assert is_expression(job["outputs"]["gate"], "steps.plan.outputs.gate")
    declared = json.loads(doc["env"]["GPU_RUNNER_TYPES"])
    proc, out = plan(doc, tmp_path, doc["env"]["GPU_RUNNER_TYPES"])
    assert proc.returncode == 0, proc.stderr
    assert out == {"types": {"include": declared}, "gate": {"include": [{**declared[0], "shard": 1}]}}

    # The example of the workflow's comments, added as it says: one more type, its own shards.
    example = re.search(r'^#\s+(\{"type".*\})\s*$', text, re.M)
    assert example, "no example runner type in the workflow's comments"
    added = json.loads(example.group(1))
    proc, out = plan(doc, tmp_path, json.dumps([*declared, added]))
    assert proc.returncode == 0, proc.stderr
    assert [t["type"] for t in out["types"]["include"]] == ["h200", added["type"]]
    assert [(g["type"], g["shard"], g["shards"]) for g in out["gate"]["include"]] == [
        ("h200", 1, 1),
        *((added["type"], i, added["shards"]) for i in range(1, added["shards"] + 1)),
    ]
    assert all(g["labels"] == added["labels"] for g in out["gate"]["include"][1:])


@pytest.mark.parametrize(
    "change,message",
    [
        ("[]", "give a non-empty JSON list"),
        ("not json", "not JSON"),
        ("no budget", "give exactly type, labels, shards and budget"),
        ({"extra": 1}, "give exactly type, labels, shards and budget"),
        ({"type": "H200"}, "type 'H200': lower-case letters, digits and _"),
        ({"type": "h200-x"}, "type 'h200-x'"),  # a '-' would let one type's artifact pattern match another's
        ("twice", "each type once"),
        ({"labels": ["linux", "gpu"]}, "with self-hosted among them"),
        ({"labels": ["self-hosted", "${{ github.actor }}"]}, "with self-hosted among them"),
        ({"labels": "self-hosted"}, "with self-hosted among them"),
        ({"shards": 0}, "shards 0: a whole number from 1 to 16"),
        ({"shards": 17}, "shards 17"),
        ({"shards": "2"}, "shards '2'"),
        ({"shards": True}, "shards True"),
        ({"budget": 0}, "budget 0: minutes, from 1 to 60"),
        ({"budget": 61}, "budget 61"),
        ({"budget": "20"}, "budget '20'"),
    ],
)
def test_plan_refuses_a_bad_declaration(text, tmp_path, change, message):
    doc = load(text)
    types = json.loads(doc["env"]["GPU_RUNNER_TYPES"])
    if isinstance(change, dict):
        types[0].update(change)
        declaration = json.dumps(types)
    elif change == "no budget":
        del types[0]["budget"]
        declaration = json.dumps(types)
    elif change == "twice":
        declaration = json.dumps(types * 2)
    else:
        declaration = change
    proc, out = plan(doc, tmp_path, declaration)
    assert proc.returncode != 0 and "GPU_RUNNER_TYPES: " in proc.stderr and message in proc.stderr, proc.stderr
    assert out == {}, "a refused declaration must leave no matrix"


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory) -> dict[str, str]:
    """A repository where main moved on after the pull request's branch left it: the merge base
    is neither main's tip (what the event names as the base) nor the head."""
    repo = tmp_path_factory.mktemp("pr") / "checkout"
    repo.mkdir()

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    for name, branch in (("fork point", "main"), ("the pull request", "feature"), ("main moves on", "main")):
        if branch == "feature":
            git("switch", "-q", "-c", "feature")
        elif name == "main moves on":
            git("switch", "-q", "main")
        (repo / "x.txt").write_text(name)
        git("add", "x.txt")
        git("commit", "-q", "-m", name)
    git("switch", "-q", "--detach", "feature")  # actions/checkout of the head sha
    return {
        "repo": str(repo),
        "base_sha": git("rev-parse", "main"),
        "merge_base": git("merge-base", "main", "HEAD"),
        "head": git("rev-parse", "HEAD"),
    }


def gate_steps(doc: dict[str, Any]) -> tuple[dict, dict, dict]:
    steps_ = doc["jobs"]["gate"]["steps"]
    shard = next(s for s in steps_ if AB_RUN.search(s.get("run", "")))
    upload = next(s for s in steps_ if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    final = steps_[-1]
    return shard, upload, final


def run_shard(doc, tmp_path, pull_request, entry, step, exit_status):
    """The gate's A/B step with a stub trtbench that records its arguments and exits as told."""
    repo = Path(pull_request["repo"])
    record, out = tmp_path / "args", tmp_path / f"output-{exit_status}"
    out.write_text("")
    shim(repo.parent / "bin", "trtbench", 'printf "%s\\n" "$@" > "$STUB_ARGS"; exit "$STUB_EXIT"')
    context = {
        **matrix_context(entry),
        "github.event.pull_request.base.sha": pull_request["base_sha"],
        "runner.tool_cache": "/opt/hostedtoolcache",
    }
    proc = run_step(
        doc, "gate", step, repo, context, STUB_ARGS=str(record), STUB_EXIT=str(exit_status), GITHUB_OUTPUT=str(out)
    )
    return proc, outputs(out), record.read_text().splitlines() if record.exists() else []


@pytest.mark.parametrize("exit_status", [0, 1, 2, 3])
def test_a_shard_runs_its_share_against_the_merge_base_and_always_reaches_its_upload(
    text, tmp_path, pull_request, exit_status
):
    doc = load(text)
    _, planned = plan(doc, tmp_path, with_type(doc, shards=3, budget=7))
    entry = planned["gate"]["include"][1]  # h200, shard 2 of 3
    shard, upload, final = gate_steps(doc)
    proc, out, args = run_shard(doc, tmp_path, pull_request, entry, shard, exit_status)
    assert proc.returncode == 0, f"the step failed before the upload:\n{proc.stdout}\n{proc.stderr}"
    assert out == {"exit": str(exit_status)}
    assert args == [
        "ab",
        "--base",
        pull_request["merge_base"],
        "--head",
        "HEAD",
        "--shard",
        "2/3",
        "--budget",
        "7",
        "--out",
        "ab-h200-2",
        "--",
        "--backend",
        "all",
        "--engine-cache-dir=/opt/hostedtoolcache/trt-engines",
    ]
    assert pull_request["merge_base"] not in (pull_request["base_sha"], pull_request["head"])
    # The upload takes that folder under its own artifact name, whatever the step found.
    resolve = matrix_context(entry)
    with_ = {k: EXPRESSION.sub(lambda m: context_value(resolve, m.group(1)), str(v)) for k, v in upload["with"].items()}
    assert with_["name"] == "ab-h200-2" and with_["path"].rstrip("/") == "ab-h200-2" and "always()" in upload["if"]
    # Then the job fails unless the shard found no regression.
    ended = run_step(doc, "gate", final, Path(pull_request["repo"]), {"steps.ab.outputs.exit": out["exit"]})
    assert (ended.returncode == 0) == (exit_status == 0), ended.stdout


def test_a_shard_that_never_ran_fails_its_job(text, pull_request):
    doc = load(text)
    _, _, final = gate_steps(doc)
    ended = run_step(doc, "gate", final, Path(pull_request["repo"]), {"steps.ab.outputs.exit": ""})
    assert ended.returncode != 0 and "exit status none" in ended.stdout


def test_a_shard_step_that_fails_on_its_verdict_is_caught(text, tmp_path, pull_request):
    # Negative control: without the captured exit status, a regression ends the step before the
    # upload's turn and records nothing; the test above would see both.
    doc = load(text)
    _, planned = plan(doc, tmp_path, doc["env"]["GPU_RUNNER_TYPES"])
    shard, _, _ = gate_steps(doc)
    broken = {**shard, "run": shard["run"].replace(" || rc=$?", "")}
    proc, out, _ = run_shard(doc, tmp_path, pull_request, planned["gate"]["include"][0], broken, 1)
    assert proc.returncode != 0 and out == {}


TESTS = [
    f"test_approach[{backend}-{case}]"
    for backend in ("torch", "tensorrt")
    for case in ("fp16", "overlap", "cuda_graph")
]


def write_shard(root: Path, shard: int, shards: int, regression: bool = False) -> Path:
    """A shard's folder as `trtbench ab --shard I/N --out ab-h200-I` leaves it (ab.write_outputs)."""
    out = root / "shards" / f"ab-h200-{shard}"
    names = TESTS[shard - 1 :: shards]
    gate = ab.Gate(
        Checkout(root, "a" * 40, "A"),
        Checkout(root, "b" * 40, "B"),
        ab.Plan(
            tests=tuple(f"benchmarks/test_approaches.py::{name}" for name in names),
            budget_s=20 * 60.0,
            min_pairs=3,
            max_pairs=20,
            pytest_args=("--backend", "all"),
            cache=root / ".cache",
            out=out,
            env={},
        ),
        selected=tuple(f"benchmarks/test_approaches.py::{name}" for name in TESTS),  # the gate's, before sharding
    )
    machine = SimpleNamespace(machine={"gpu_name": "NVIDIA H200", "tensorrt": "10.13.3.9"})
    gate.runs = {"A": [machine] * 4, "B": [machine] * 4}
    gate.pair_seconds = [200.0 / shards] * 4
    gate.stopped_by = "every metric decided"
    rng = np.random.default_rng(shard)
    for name in names:
        for metric in ("wall", "compute"):
            a = list(10 * np.exp(0.003 * rng.standard_normal(4)))
            b = list((1.1 if regression else 1.0) * 10 * np.exp(0.003 * rng.standard_normal(4)))
            gate.rows.append(ab.Row(name, metric, decide_ab(a, b, 0.03, 0.01)))
    assert {r.verdict for r in gate.rows} == ({"REGRESSION"} if regression else {"ok"})
    ab.write_outputs(gate, (shard, shards))
    return out


def merge_step(doc: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in doc["jobs"]["verdict"]["steps"] if AB_RUN.search(s.get("run", "")))


def run_verdict(doc, tmp_path, step) -> tuple[subprocess.CompletedProcess[str], str]:
    """The verdict's merge step in the folder the shards were downloaded to, with the real trtbench."""
    _, planned = plan(doc, tmp_path, with_type(doc, shards=3))
    shim(tmp_path / "bin", "trtbench", f'PYTHONPATH="{ROOT}" exec "{sys.executable}" -m trtbench "$@"')
    summary = tmp_path / "summary.md"
    summary.write_text("")
    context = matrix_context(planned["types"]["include"][0])
    proc = run_step(doc, "verdict", step, tmp_path / "work", context, GITHUB_STEP_SUMMARY=str(summary))
    return proc, summary.read_text()


@pytest.fixture
def work(tmp_path) -> Path:
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


def test_the_verdict_downloads_where_the_shards_upload(text):
    doc = load(text)
    _, upload, _ = gate_steps(doc)
    download = next(
        s for s in doc["jobs"]["verdict"]["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact@")
    )
    pattern = EXPRESSION.sub(lambda m: context_value({"matrix.type": "h200"}, m.group(1)), download["with"]["pattern"])
    name = EXPRESSION.sub(
        lambda m: context_value({"matrix.type": "h200", "matrix.shard": 2}, m.group(1)), upload["with"]["name"]
    )
    assert fnmatch.fnmatchcase(name, pattern) and not fnmatch.fnmatchcase("ab-h200_x-2", pattern)
    assert download["with"]["path"] == "shards" and "shards/ab-$RUNNER_TYPE-$shard/ab.json" in merge_step(doc)["run"]
    assert "always()" in merge_step(doc)["if"]


@pytest.mark.parametrize("regression", [False, True])
def test_the_verdict_merges_every_shard_into_one_table(text, tmp_path, work, regression):
    doc = load(text)
    for shard in (1, 2, 3):
        write_shard(work, shard, 3, regression=regression and shard == 2)
    proc, summary = run_verdict(doc, tmp_path, merge_step(doc))
    assert proc.returncode == (1 if regression else 0), proc.stdout + proc.stderr
    assert summary.startswith("## A/B gate on h200 (3 shard(s))\n\n| test | metric |")
    assert summary.count("| test | metric |") == 1, summary  # one table
    rows = [line for line in summary.splitlines() if line.startswith("| test_approach[")]
    assert sorted({line.split(" | ")[0].removeprefix("| ") for line in rows}) == sorted(TESTS)
    if regression:
        assert "4 regression(s)" in summary and "exit status 1" in summary  # shard 2: 2 tests x 2 metrics
    else:
        assert "no regression: every metric decided" in summary and "exit status 0" in summary


def test_a_missing_shard_is_a_refusal_that_names_it(text, tmp_path, work):
    doc = load(text)
    for shard in (1, 2):  # shard 3 crashed before its upload: no folder
        write_shard(work, shard, 3)
    proc, summary = run_verdict(doc, tmp_path, merge_step(doc))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "shards/ab-h200-3/ab.json: no such file" in summary and "exit status 2" in summary


def test_a_refused_shard_is_a_refusal_that_says_why(text, tmp_path, work):
    doc = load(text)
    write_shard(work, 1, 3)
    write_shard(work, 3, 3)
    why = "B process 1 (bbbbbbbbbbbb) failed (pytest exit 4): ERROR: tensorrt not installed"
    ab.write_refusal(work / "shards" / "ab-h200-2", (2, 3), why)
    proc, summary = run_verdict(doc, tmp_path, merge_step(doc))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"shard [2, 3] could not decide: {why}" in summary and "exit status 2" in summary


def test_a_verdict_step_that_passes_a_missing_shard_is_caught(text, tmp_path, work):
    # Negative control: a merge step that ignores the merge's exit status passes a missing shard,
    # which the test above would see.
    doc = load(text)
    write_shard(work, 1, 3)
    step = merge_step(doc)
    broken = {**step, "run": step["run"].replace('exit "$rc"', "exit 0")}
    assert broken["run"] != step["run"]
    proc, _ = run_verdict(doc, tmp_path, broken)
    assert proc.returncode == 0
