"""Subcommands of the suite's command, one module each: ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> exit status``."""
