"""Root conftest: loads the suite's plugin modules (options are listed in ``pytest --help``)."""

pytest_plugins = [
    "fixtures.options",
    "fixtures.session",
    "fixtures.model",
    "fixtures.engines",
    "pytester",  # the plugin's own tests drive pytest runs
]
