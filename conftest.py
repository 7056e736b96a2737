"""Root conftest: loads the suite's plugin modules (options are listed in ``pytest --help``)."""

pytest_plugins = [
    "fixtures.options",
    "fixtures.model",
    "fixtures.engines",
    "fixtures.bench",
    "pytester",  # the plugin's own tests drive pytest runs
]
