"""``python -m trtbench`` and the ``trtbench`` console script.

Ctrl-C while the command's own modules are still loading (before ``cli.guarded`` is in
place) stops it with the guard's one line and status, not a traceback: the handler goes in
before anything else is imported. Python's own start-up, before this module runs, is the
only window left.
"""

import os
import signal
import sys

INTERRUPTED_LINE = b"interrupted (Ctrl-C): stopped\n"  # as cli.guarded prints it
EXIT_INTERRUPTED = 130  # cli.EXIT_INTERRUPTED, without importing cli first


def _stop_while_loading(signum: int, frame: object) -> None:
    os.write(2, INTERRUPTED_LINE)
    os._exit(EXIT_INTERRUPTED)


def main() -> int:
    signal.signal(signal.SIGINT, _stop_while_loading)
    from trtbench import cli

    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, the guard's KeyboardInterrupt
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
