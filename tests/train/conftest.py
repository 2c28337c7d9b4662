"""A tiny, fast configuration of the published blog model on digits for training tests."""

import pytest

from hqnn.train.presets import load_config


@pytest.fixture
def tiny_config(tmp_path):
    """``tiny_config(*overrides)``: digits, 12x12, 48 items per split, batch 16, 2 epochs, no twin."""

    def make(*overrides):
        base = [
            "epochs=2", "data.limit=48", "data.image_size=12", "batch_size=16", "compare=false",
            "threads=1", "run.progress=false", f"run.out_dir={tmp_path / 'runs'}", "run.name=tiny",
        ]
        return load_config("digits_cnn_qnn_faithful", [*base, *overrides])

    return make
