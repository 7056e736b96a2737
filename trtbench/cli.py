"""Exit statuses shared by the suite's commands, and the guard that keeps tracebacks
from users: every failure is one line on stderr with its own status."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

EXIT_OK = 0
EXIT_REGRESSION = 1  # compare: a regression, and nothing else
EXIT_REFUSED = 2  # refused or unusable input (also argparse's usage errors)
EXIT_UNCLEAR = 3  # compare: a change past its threshold the samples cannot confirm yet
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
EXIT_INTERNAL = 70  # a bug of ours (sysexits' EX_SOFTWARE)


class Unusable(Exception):
    """An input that cannot be used; the message says why, in one line."""


def read_json(path: Path) -> Any:
    """A JSON file's content, or Unusable saying what is wrong with the file."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise Unusable(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Unusable(f"{path}: not readable ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        raise Unusable(f"{path}: not valid JSON ({exc})") from None


@contextlib.contextmanager
def writing(option: str, path: Path) -> Iterator[None]:
    """Writes to ``path`` (given with ``option``): a failure is Unusable, naming both."""
    try:
        yield
    except OSError as exc:
        raise Unusable(f"{option} {path}: cannot write ({exc.strerror or exc})") from None


def guarded(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command's ``main``: an unusable input, Ctrl-C and unexpected errors become one
    line and a status."""
    try:
        return main(argv)
    except Unusable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # one line, never a traceback
        print(f"internal error: {type(exc).__name__}: {exc} (a bug: please report it with the command line)",
              file=sys.stderr)
        return EXIT_INTERNAL


class Parser(argparse.ArgumentParser):
    """argparse with usage errors in one line (what was wrong, and where to look)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_REFUSED, f"{self.prog}: {message} (see {self.prog} --help)\n")
