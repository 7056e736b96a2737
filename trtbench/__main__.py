"""``python -m trtbench``: the ``trtbench`` command where the suite is not installed (a GPU
machine running it from the repository root)."""

import sys

from trtbench.cli import main

sys.exit(main())
