"""The subcommands of ``trtbench``, one module each (see ``trtbench.cli``)."""
