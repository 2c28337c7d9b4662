"""Fixtures for the data tests: the shared real-data folder (skipped where absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_writers import SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (only present on the project's machines)")
    return SHARED_DATA
