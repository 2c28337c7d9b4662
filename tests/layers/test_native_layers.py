"""The native spiking-layer kernels against independent oracles: the IF neuron against its
step-by-step autograd form (ATanSpike per step, reset not detached) and against IFNeuron, the 3x3
convolution against torch's conv2d and gradcheck in float64; whole SQDR-CNN models swapped in place."""

import copy
import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spiking_reference import unrolled_if

from hqnn.layers import IFNeuron
from hqnn.layers import native_layers
from hqnn.layers.native_layers import NativeConv3x3, NativeIFNeuron, NativeIFPool, layers_library, use_native_layers
from hqnn.models import create_model

pytestmark = pytest.mark.skipif(layers_library(torch.float64) is None, reason="needs a C compiler for the kernels")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(10, 16, 2, 28, 28), (3, 5, 27), (1, 7), (4, 1, 1300)])
@pytest.mark.parametrize("settings", [(1.0, 0.0, 2.0), (0.5, -0.2, 4.0)])
def test_if_kernel_matches_the_unrolled_neuron(dtype, shape, settings):
    v_threshold, v_reset, alpha = settings
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(shape, generator=gen, dtype=dtype) * 0.7 + 0.3).requires_grad_()
    neuron = NativeIFNeuron(v_threshold, v_reset, alpha)
    out = neuron(x)
    ref = unrolled_if(x, v_threshold, v_reset, alpha)
    assert torch.equal(out, ref)  # spikes bitwise
    assert torch.equal(out, IFNeuron(v_threshold, v_reset, alpha)(x))
    grad = torch.randn(shape, generator=gen, dtype=dtype)
    got, = torch.autograd.grad(out, x, grad)
    want, = torch.autograd.grad(ref, x, grad)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


def unrolled_if_pool(x_seq, *settings):
    """The oracle of the fused layer: the unrolled neuron, then torch's max_pool2d on every step."""
    spikes = unrolled_if(x_seq, *settings)
    pooled = F.max_pool2d(spikes.flatten(0, -3).unsqueeze(1), 2, 2).squeeze(1)
    return pooled.view(*spikes.shape[:-2], *pooled.shape[-2:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(10, 16, 2, 28, 28), (10, 4, 8, 7, 7), (3, 2, 3, 5, 6), (2, 1, 1, 3, 2)])
@pytest.mark.parametrize("settings", [(1.0, 0.0, 2.0), (0.5, -0.2, 4.0)])
def test_fused_if_pool_matches_the_neuron_then_max_pool(dtype, shape, settings):
    gen = torch.Generator().manual_seed(2)
    x = (torch.randn(shape, generator=gen, dtype=dtype) * 0.7 + 0.3).requires_grad_()
    layer = NativeIFPool(*settings)
    out, ref = layer(x), unrolled_if_pool(x, *settings)
    assert out.shape == ref.shape and torch.equal(out, ref)
    assert 0 < float(out.detach().mean()) < 1  # both spiking and silent windows (ties go to the first position)
    grad = torch.randn(out.shape, generator=gen, dtype=dtype)
    got, = torch.autograd.grad(out, x, grad)
    want, = torch.autograd.grad(ref, x, grad)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


def test_fused_if_pool_refuses_maps_too_small_to_pool_as_max_pool_does():
    with pytest.raises(RuntimeError, match="too small"):
        NativeIFPool()(torch.rand(2, 1, 1, 1, 3))


def test_fused_if_pool_fallback_matches_the_kernel():
    x = torch.rand(4, 3, 2, 6, 6, dtype=torch.float64) * 1.5
    layer = NativeIFPool()
    kernel = layer(x)
    traced = torch.func.vmap(layer)(x[None])[0]  # torch.func: the PyTorch path
    assert torch.equal(kernel, traced)


def test_if_kernel_has_no_second_derivative_and_says_so():
    x = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    grad, = torch.autograd.grad(NativeIFNeuron()(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="grad"):  # an error, never a silent zero
        grad.sum().backward()


CONV_CASES = [  # (batch, in, out, height, width, bias): blocks of 1, 4 and 12 samples, partial last blocks
    (160, 1, 2, 28, 28, False), (7, 2, 4, 14, 14, False), (3, 2, 3, 5, 9, True), (2, 1, 1, 1, 1, False),
    (9, 2, 8, 2, 3, True), (17, 1, 5, 7, 1, False), (37, 4, 8, 7, 7, False), (25, 3, 2, 1, 30, True),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_kernel_matches_conv2d(case):
    n, cin, cout, h, w, bias = case
    torch.manual_seed(0)
    conv = NativeConv3x3.from_conv(nn.Conv2d(cin, cout, 3, padding=1, bias=bias).double())
    x = torch.randn(n, cin, h, w, dtype=torch.float64, requires_grad=True)
    out = conv(x)
    ref = F.conv2d(x, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    params = [x, conv.weight, *([conv.bias] if bias else [])]
    grad = torch.randn_like(out)
    for got, want in zip(torch.autograd.grad(out, params, grad), torch.autograd.grad(ref, params, grad)):
        torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-11)


def test_conv_kernel_gradcheck_and_float32():
    conv = NativeConv3x3.from_conv(nn.Conv2d(2, 3, 3, padding=1, bias=True).double())
    x = torch.randn(5, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(conv, (x,))
    conv32 = NativeConv3x3.from_conv(nn.Conv2d(1, 2, 3, padding=1, bias=False))
    x32 = torch.rand(16, 1, 28, 28)
    torch.testing.assert_close(conv32(x32), F.conv2d(x32, conv32.weight, padding=1), rtol=1e-5, atol=1e-5)


def test_weight_gradient_does_not_depend_on_the_thread_count():
    conv = NativeConv3x3.from_conv(nn.Conv2d(2, 4, 3, padding=1, bias=False))
    x = torch.rand(37, 2, 9, 9)
    grads = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            grads.append(torch.autograd.grad(conv(x).square().sum(), conv.weight)[0])
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(grads[0], g) for g in grads[1:])


def test_an_empty_batch_passes_as_through_pytorch():
    # a rank's empty share of a last batch under torchrun (RankBatches): shapes and zero gradients
    model = create_model("sqdr_cnn", time_steps=2)
    assert use_native_layers(model) == 7
    out = model(torch.rand(0, 1, 28, 28))
    assert out.shape == (0, 10)
    out.sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_conv_falls_back_where_the_kernel_cannot_run():
    conv = NativeConv3x3.from_conv(nn.Conv2d(2, 4, 3, padding=1, bias=False))
    x = torch.rand(3, 2, 6, 6).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, padding=1))
    assert conv(x).grad_fn.name() == "ConvolutionBackward0"  # oneDNN, not the kernel
    assert conv(x.contiguous()).grad_fn.name() == "_Conv3x3KernelBackward"
    # torch.func: traced tensors take the PyTorch path, so transforms work
    w = conv.weight.detach()
    jac = torch.func.jacrev(lambda inp: torch.func.functional_call(conv, {"weight": w}, (inp,)))(x[:1].contiguous())
    assert jac.shape == (1, 4, 6, 6, 1, 2, 6, 6)


def test_use_native_layers_on_sqdr_cnn_keeps_state_outputs_and_gradients():
    torch.manual_seed(0)
    model = create_model("sqdr_cnn", time_steps=4).double()
    reference = copy.deepcopy(model)
    params, keys = list(model.parameters()), list(model.state_dict())
    replaced = use_native_layers(model)
    kinds = [type(m) for m in model.modules()]
    # three IF + pool pairs fused, the last IF alone; the 1 -> 2, 2 -> 4 and 4 -> 8 channel convs
    assert kinds.count(NativeIFPool) == 3 and kinds.count(NativeIFNeuron) == 1 and kinds.count(nn.Identity) == 3
    assert kinds.count(NativeConv3x3) == 3
    assert replaced == 7 and use_native_layers(model) == 0
    assert list(model.parameters()) == params and list(model.state_dict()) == keys
    x = torch.rand(6, 1, 28, 28, dtype=torch.float64) * 0.99
    out, ref = model(x), reference(x)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    out.square().sum().backward()
    ref.square().sum().backward()
    for got, want in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-8, atol=1e-10)


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


_NO_KERNELS = """
import warnings, torch
from hqnn.layers.native_layers import use_native_layers
from hqnn.models import create_model
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = create_model("sqdr_cnn", time_steps=2)
    n = use_native_layers(model)
model(torch.rand(2, 1, 28, 28) * 0.99).sum().backward()
print(n, len(caught), [str(m.message)[:70] for m in caught])
"""


def test_without_a_compiler_it_warns_once_and_keeps_the_pytorch_layers(tmp_path):
    done = _run_python(_NO_KERNELS, HQNN_CC=str(tmp_path / "no-such-cc"), HQNN_CACHE_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("0 1 ") and "native layer kernels could not be built" in done.stdout


def test_disabled_by_environment_keeps_the_pytorch_layers_silently():
    done = _run_python(_NO_KERNELS, HQNN_NATIVE="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0 0 []"


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs cc")
def test_kernels_share_the_circuit_kernels_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HQNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native_layers, "_STATE", {})
    assert layers_library(torch.float32) is not None
    built = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert len(built) == 2 and built[0].startswith("hqnn_layers_single_") and built[1].endswith(".so.sha256")


def test_training_through_the_kernels_follows_the_pytorch_trajectory():
    """30 Adam steps of sqdr_cnn_plus in float64, PyTorch layers against native ones: the same
    parameters to 1e-9 (150 steps measured 9e-10), so any float32 difference is rounding."""
    torch.manual_seed(0)
    plain = create_model("sqdr_cnn_plus", time_steps=6).double()
    native = copy.deepcopy(plain)
    assert use_native_layers(native) == 7
    optimizers = [torch.optim.Adam(m.parameters(), 3e-3) for m in (plain, native)]
    gen = torch.Generator().manual_seed(1)
    for _ in range(30):
        x = torch.randint(0, 256, (16, 1, 28, 28), generator=gen).double() / 256
        y = torch.randint(0, 10, (16,), generator=gen)
        for model, optimizer in zip((plain, native), optimizers):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    for p, q in zip(plain.parameters(), native.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-9)
