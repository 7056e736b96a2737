"""Shared CPU fixtures: the default model, built and calibrated once per session."""

import pytest

from trtbench import model as m


@pytest.fixture(scope="session")
def spec():
    return m.model_spec("resnet18")


@pytest.fixture(scope="session")
def net(spec, tmp_path_factory):
    """The seeded, calibrated ResNet-18 (as the benchmarks build it), on the CPU."""
    return m.build_model(spec, cache_dir=tmp_path_factory.mktemp("models"))
