"""The native kernel's program layout is versioned: a cached library that reads another layout (built
by another hqnn version) is refused before it is loaded, logged, and rebuilt, and the answers stay right."""

import logging
import os
import shutil

import pytest
import torch

from hqnn.sim import native, run
from hqnn.templates import recipes


@pytest.mark.skipif(shutil.which(os.environ.get("HQNN_CC", "cc")) is None, reason="needs a C compiler")
def test_a_library_of_another_layout_is_refused_and_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HQNN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("HQNN_NATIVE", raising=False)
    monkeypatch.setattr(native, "_STATE", {})  # nothing loaded yet in this "process"
    path = native._build("double")
    tag = b"hqnn-program-layout %d\0" % native.LAYOUT
    data = path.read_bytes()
    assert data.count(tag) == 1 and native._declared_layout(path) == native.LAYOUT
    # the same library as another hqnn version would have built it: only the declared layout differs,
    # and its hash record is valid, so that only the layout check can refuse it
    path.write_bytes(data.replace(tag, b"hqnn-program-layout 0\0"))
    native._record(path).write_text(native._sha256(path) + "\n")
    assert native._declared_layout(path) == 0

    with caplog.at_level(logging.WARNING, logger="hqnn.sim.native"):
        assert native.library(torch.float64) is not None
    assert f"reads program layout 0, this hqnn writes layout {native.LAYOUT}; rebuilding" in caplog.text
    assert native._declared_layout(path) == native.LAYOUT and native._verify(path) is None

    circuit = recipes.hcqdl_crx_ring(4)
    x = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.rand(circuit.n_weights, dtype=torch.float64, requires_grad=True)
    out = run(circuit, x, w, method="native")
    torch.testing.assert_close(out, run(circuit, x, w, method="gates"), atol=1e-12, rtol=0)
    got = torch.autograd.grad(out.sum(), (x, w))
    want = torch.autograd.grad(run(circuit, x, w, method="gates").sum(), (x, w))
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e, atol=1e-12, rtol=0)
