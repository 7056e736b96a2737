"""The suite's command, ``trtbench SUBCOMMAND`` (also ``python -m trtbench``), and what its
subcommands share: one exit status per meaning, one-line errors, no traceback.

Each subcommand is a module of ``trtbench.commands`` with ``add_arguments(parser)`` and
``run(args) -> int``, imported only when it is the one asked for (inside the guard: a
Ctrl-C while it loads is caught like any other). Arguments after ``--`` are passed through
(to pytest) as ``args.passthrough``, to a subcommand that sets ``ACCEPTS_PASSTHROUGH``.

This module imports the standard library only: it runs first, after ``__main__`` has put in
its handler for a Ctrl-C while modules load.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK = 0
EXIT_REGRESSION = 1  # the check found what it guards against: a regression, a false alarm, a type error
EXIT_REFUSED = 2  # refused or unusable input (also argparse's usage errors)
EXIT_UNCLEAR = 3  # can't tell: a change past its threshold that the samples cannot confirm
EXIT_INTERNAL = 70  # a bug of ours (sysexits' EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
EXIT_PIPE_CLOSED = 141  # the reader of the output went away (`| head`), as shells report SIGPIPE
EXIT_STATUSES = (
    f"exit status: {EXIT_OK} fine, {EXIT_REGRESSION} regression (or what the check guards against), "
    f"{EXIT_REFUSED} refused input, {EXIT_UNCLEAR} can't tell, {EXIT_INTERNAL} internal error, "
    f"{EXIT_INTERRUPTED} Ctrl-C, {EXIT_PIPE_CLOSED} output cut short (its reader closed the pipe)"
)

SUBCOMMANDS = {  # name -> (module of trtbench.commands, what it does)
    "compare": ("compare", "compare two saved runs per test and metric (exit 1 on a regression)"),
    "report": ("report", "write report.md and its pictures from a saved run"),
    "calibrate": ("calibrate", "derive thresholds from runs of the same code (A/A) and check they flag none"),
    "ab": ("ab", "compare two commits in one job, in alternating processes (the A/B gate)"),
    "bisect": ("bisect", "find the first commit where a test regressed, each step an A/B decision"),
    "trends": ("trends", "change points over the history of saved runs, as a page and a summary"),
    "prune": ("prune", "keep the newest saved runs of each folder"),
    "static-check": ("static_check", "type-check the TensorRT code against tensorrt-stubs (mypy --strict)"),
}


class Unusable(Exception):
    """An input that cannot be used; the message says why, in one line."""


def read_json(path: Path) -> Any:
    """A JSON file's content, or Unusable saying what is wrong with the file."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise Unusable(f"{path}: no such file") from None
    except IsADirectoryError:
        raise Unusable(f"{path}: a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Unusable(f"{path}: not readable ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        raise Unusable(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise Unusable(f"{path}: not usable JSON (nested too deeply)") from None


@contextlib.contextmanager
def writing(option: str, path: Path) -> Iterator[None]:
    """Writes to ``path`` (given with ``option``): a failure is Unusable, naming both."""
    try:
        yield
    except OSError as exc:
        raise Unusable(f"{option} {path}: cannot write ({exc.strerror or exc})") from None


def guarded(run: Callable[[], int]) -> int:
    """Run a command: an unusable input, Ctrl-C and unexpected errors become one line on
    stderr and their exit status."""
    try:
        status = run()
        sys.stdout.flush()  # a closed pipe shows here, inside the guard, not at interpreter exit
        return status
    except BrokenPipeError:
        # what is left to print has nowhere to go: send it to devnull so exit does not fail again
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    except Unusable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # one line, never a traceback
        print(
            f"internal error: {type(exc).__name__}: {exc} (a bug: please report it with the command line)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


class Parser(argparse.ArgumentParser):
    """argparse with usage errors in one line (what was wrong, and where to look)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_REFUSED, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None) -> tuple[Parser, Parser | None]:
    """The command's parser and its ``command``'s: only that module is imported and given its
    arguments."""
    parser = Parser(
        prog="trtbench",
        description="Judge, compare and explain runs of the TensorRT pipeline suite "
        "(the benchmarks themselves run under pytest).",
        epilog=EXIT_STATUSES,
    )
    subcommands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=Parser)
    chosen = None
    for name, (module_name, what) in SUBCOMMANDS.items():
        sub = subcommands.add_parser(
            name, help=what, epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        if name == command:
            module = importlib.import_module(f"trtbench.commands.{module_name}")
            sub.description = module.__doc__
            module.add_arguments(sub)
            sub.set_defaults(command_run=module.run, accepts_passthrough=getattr(module, "ACCEPTS_PASSTHROUGH", False))
            chosen = sub
    return parser, chosen


def dispatch(argv: list[str]) -> int:
    own, passthrough = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser, sub = build_parser(own[0] if own and own[0] in SUBCOMMANDS else None)
    args, unknown = parser.parse_known_args(own)
    if args.command is None:
        parser.print_help()
        return EXIT_REFUSED
    assert sub is not None
    if unknown:
        sub.error(f"unrecognized arguments: {' '.join(unknown)}")
    if passthrough and not args.accepts_passthrough:
        sub.error("takes no arguments after --")
    args.passthrough = passthrough
    status: int = args.command_run(args)
    return status


def main(argv: list[str] | None = None) -> int:
    """The console script ``trtbench``."""
    return guarded(lambda: dispatch(list(sys.argv[1:] if argv is None else argv)))
