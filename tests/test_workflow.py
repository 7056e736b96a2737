"""The GPU workflow (.github/workflows/gpu-benchmarks.yml), checked on a CPU machine.

It has no runner here, so CI checks what can be checked without one: the GitHub workflow
schema (check-jsonschema), zizmor's security audits (nothing above "low"), and the contract
this suite relies on (pinned actions, read-only token, fork pull requests kept off the
self-hosted runner, every backend required, history saved only from main, the history branch
written only by a push to main from the one job that may write). Negative controls
prove each check fails on a broken copy. Both tools come from requirements.txt; a missing
tool is a failure, not a skip, so the check can never pass by not running.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "gpu-benchmarks.yml"
SEVERITY = {"unknown": 0, "informational": 1, "low": 2, "medium": 3, "high": 4}
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"
PYTEST_RUN = re.compile(r"\bpython3? -m pytest\b")  # the step that runs the suite
MAIN_PUSH = ("github.event_name == 'push'", "github.ref == 'refs/heads/main'")
MAIN = "refs/heads/main"
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
    are understood.

    Anything else raises ValueError, so an unusual condition is flagged rather than trusted.
    """
    expr = " ".join(str(condition).split()).removeprefix("${{").removesuffix("}}")
    expr = expr.replace(FORK_GUARD, f" {same_repo} ")
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

    # Fork pull requests never reach the self-hosted runner; main's pushes and dispatches do.
    bench_jobs = {job_id for job_id, step in steps(doc) if PYTEST_RUN.search(str(step.get("run", "")))}
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
            for event in ("push", "workflow_dispatch", "pull_request"):
                if job_id in bench_jobs and event in triggers and not job_runs(condition, event, same_repo=True):
                    problems.append(f"job {job_id}: never runs for {event} (if: {condition!r})")
        except ValueError as exc:
            problems.append(f"job {job_id}: {exc}")
        if "pull_request_target" in triggers or "workflow_run" in triggers:
            problems.append("pull_request_target/workflow_run would run fork code with this repository's rights")

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


def test_zizmor_really_audited_the_jobs():
    # Positive control: the auditor persona reports every self-hosted runner, and this job has one,
    # so an empty answer above cannot come from zizmor not reading the jobs.
    idents = {f["ident"] for f in zizmor(WORKFLOW, persona="auditor")}
    assert "self-hosted-runner" in idents, f"zizmor (auditor) did not see the self-hosted job: {sorted(idents)}"


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
    job = doc["jobs"]["benchmarks"]
    assert "self-hosted" in job["runs-on"] and job["timeout-minutes"] > 0
    assert doc["permissions"] == {"contents": "read"}
    assert history_writers(doc) == {"history"}
    history = doc["jobs"]["history"]
    assert history["permissions"] == {"contents": "write"} and job["permissions"] == {"contents": "read"}
    pushes = [s for s in history["steps"] if GIT_PUSH.search(s.get("run", ""))]
    assert len(pushes) == 1 and "benchmark-history" in pushes[0]["run"] and TOKEN.search(str(pushes[0]["env"]))
    assert any("trtbench.commands.trends" in s.get("run", "") for s in history["steps"])


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
}


def _mutate(doc: dict[str, Any], change: str) -> None:
    job = doc["jobs"]["benchmarks"]
    bench = next(s for s in job["steps"] if PYTEST_RUN.search(s.get("run", "")))
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    save = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache/save@"))
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    history = doc["jobs"]["history"]
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
        trends_step = next(s for s in history["steps"] if "trtbench.commands.trends" in s.get("run", ""))
        trends_step["env"] = {"GH_TOKEN": "${{ github.token }}"}
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
