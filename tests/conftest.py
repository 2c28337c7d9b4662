"""Shared fixtures: seeded random generators and the hypothesis profile used by the property tests."""

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

# Property tests simulate circuits, whose run time varies: no per-example deadline. The default
# profile keeps the suite fast and reproducible (derandomized); HYPOTHESIS_PROFILE=thorough explores
# many more random examples.
# Test tensors are tiny: intra-op threads (torch's and numpy's BLAS) only add overhead, and on a
# loaded machine their spin-waits make each small kernel orders of magnitude slower.
torch.set_num_threads(1)
threadpool_limits(1)

_SLOW_OK = [HealthCheck.too_slow]
settings.register_profile("hqnn", deadline=None, max_examples=60, derandomize=True, suppress_health_check=_SLOW_OK)
settings.register_profile("thorough", deadline=None, max_examples=1000, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "hqnn"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A numpy generator with a fixed seed (a fresh one per test)."""
    return np.random.default_rng(20240611)


@pytest.fixture
def torch_generator() -> torch.Generator:
    """A torch CPU generator with a fixed seed (a fresh one per test)."""
    return torch.Generator().manual_seed(20240611)
