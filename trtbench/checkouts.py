"""Commits of this repository checked out side by side (git worktrees), for the commands
that measure two versions in one job (``ab``, ``bisect``). Every refusal is one line
naming the commit or option and what is allowed."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

from trtbench.cli import Unusable

# a commit holds this suite when it has these (what the A/B runs in each checkout)
SUITE_FILES = ("benchmarks/test_approaches.py", "conftest.py", "pytest.ini")
MAIN_BRANCHES = ("origin/main", "main", "origin/master", "master")


def git(repo: Path, *args: str) -> str:
    """git's output, or Unusable with its first error line."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise Unusable("git is not installed: the A/B commands check commits out with it") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["(no message)"])[0]
        raise Unusable(f"git {' '.join(args)}: {first}")
    return done.stdout.strip()


def repository(path: Path) -> Path:
    try:
        return Path(git(path, "rev-parse", "--show-toplevel"))
    except Unusable:
        raise Unusable(f"{path}: not inside a git repository; the A/B commands compare commits of one") from None


def commit(repo: Path, rev: str, option: str) -> str:
    """The full hash of ``rev``, which must be a commit of this repository holding the suite."""
    try:
        sha = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except Unusable:
        sha = ""
    if not sha:
        raise Unusable(f"{option} {rev}: not a commit of this repository")
    missing = [
        f
        for f in SUITE_FILES
        if subprocess.run(["git", "-C", str(repo), "cat-file", "-e", f"{sha}:{f}"], capture_output=True).returncode != 0
    ]
    if missing:
        raise Unusable(f"{option} {rev}: holds no {missing[0]}: not a commit of this suite")
    return sha


def suite_folder(value: str | None) -> Path | None:
    """``value`` as a folder holding the suite's sources, or None if it is not one."""
    if value is None or not Path(value).is_dir():
        return None
    folder = Path(value).resolve()
    missing = [f for f in SUITE_FILES if not (folder / f).is_file()]
    if missing:
        raise Unusable(f"{value}: a folder without {missing[0]}: not a checkout of this suite")
    return folder


def main_branch_base(repo: Path) -> str:
    """The merge base of HEAD and the main branch (what a pull request is compared with)."""
    for branch in MAIN_BRANCHES:
        if (
            subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", branch], capture_output=True
            ).returncode
            == 0
        ):
            return git(repo, "merge-base", "HEAD", branch)
    raise Unusable(f"--base: no main branch found ({', '.join(MAIN_BRANCHES)}); name the base commit with --base")


def uncommitted_changes(repo: Path) -> list[str]:
    """Tracked files changed but not committed (untracked ones are not part of any commit)."""
    return git(repo, "diff", "--name-only", "HEAD").split()


def commits_between(repo: Path, good: str, bad: str) -> list[str]:
    """The commits after ``good`` up to ``bad`` on the path between them, oldest first."""
    if (
        subprocess.run(
            ["git", "-C", str(repo), "merge-base", "--is-ancestor", good, bad], capture_output=True
        ).returncode
        != 0
    ):
        raise Unusable(f"--good {good[:12]} is not an ancestor of --bad {bad[:12]}: bisect needs good before bad")
    listed = git(repo, "rev-list", "--ancestry-path", "--reverse", f"{good}..{bad}")
    return listed.split() if listed else []


@dataclasses.dataclass(frozen=True)
class Checkout:
    """A version of the suite to measure: a commit in its own worktree, or the working tree."""

    root: Path
    sha: str | None  # None: the working tree as it is (uncommitted changes included)
    label: str  # what tables and files call it

    def describe(self) -> str:
        return self.sha[:12] if self.sha else f"folder {self.root}"


@contextlib.contextmanager
def worktrees(repo: Path, folder: Path) -> Iterator[WorktreeSet]:
    """Worktrees made on demand under ``folder``, all removed at the end."""
    made = WorktreeSet(repo, folder)
    try:
        yield made
    finally:
        made.remove_all()


class WorktreeSet:
    def __init__(self, repo: Path, folder: Path) -> None:
        self.repo, self.folder = repo, folder
        self.paths: dict[str, Path] = {}

    def checkout(self, sha: str, label: str) -> Checkout:
        if sha not in self.paths:
            path = self.folder / sha[:12]
            if path.exists():  # left by an interrupted run
                git(self.repo, "worktree", "remove", "--force", str(path))
            self.folder.mkdir(parents=True, exist_ok=True)
            git(self.repo, "worktree", "add", "--detach", str(path), sha)
            self.paths[sha] = path
        return Checkout(self.paths[sha], sha, label)

    def remove_all(self) -> None:
        for path in self.paths.values():
            subprocess.run(
                ["git", "-C", str(self.repo), "worktree", "remove", "--force", str(path)], capture_output=True
            )
        self.paths.clear()
