"""Family-specific behaviour: SP&A-Net/HCQDL options, SQDR-CNN parts and flags, the Rezk CNN's sizes."""

import math

import pytest
import torch

from hqnn.exceptions import ConfigError, ShapeError, ValueRangeError
from hqnn.layers import ClassicalTwin
from hqnn.models import create_model
from hqnn.qnn import QuantumLayer


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_spanet_uses_keras_batchnorm_and_bias_free_convs():
    model = create_model("spanet")
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all((bn.eps, bn.momentum) == (1e-3, 0.01) for bn in bns)
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_hcqdl_twin_differs_only_in_the_circuit():
    hybrid, twin = create_model("hcqdl"), create_model("hcqdl_classical")
    assert isinstance(hybrid.quantum, QuantumLayer) and isinstance(twin.quantum, ClassicalTwin)
    strip = lambda m: {k for k in m.state_dict() if not k.startswith("quantum.")}  # noqa: E731
    assert strip(hybrid) == strip(twin)


def test_hcqdl_options():
    assert count(create_model("hcqdl", attention=None, hidden=8)) == 1_328_952 + 3_844 + 4 + 40 + 90
    with pytest.raises(ConfigError, match="attention_pattern"):
        create_model("hcqdl", attention_pattern="some")
    with pytest.raises(ConfigError, match="unknown circuit recipe"):
        create_model("hcqdl", circuit="nope")


def test_sqdr_parts_and_firing_rates():
    model = create_model("sqdr_cnn", time_steps=4)
    assert (count(model.snn), count(model.quantum), count(model.classifier)) == (649, 54, 100)
    bn = model.snn.layers[0].layer[1]
    assert bn.momentum == pytest.approx(math.sqrt(0.1))
    rates = model.forward_features(torch.rand(3, 1, 28, 28))
    assert rates.shape == (3, 27)
    assert torch.equal(rates * 4, (rates * 4).round())  # multiples of 1/T


def test_sqdr_weight_init_and_flags():
    weights = create_model("sqdr_cnn").quantum.weights
    assert 0 <= weights.min() and weights.max() <= 2 * math.pi
    assert create_model("sqdr_cnn", weight_init="uniform").quantum.init == "uniform"
    x = torch.rand(4, 1, 16, 16)
    assert (create_model("sqdr_cnn")(x) >= 0).all()
    torch.manual_seed(1)
    raw = create_model("sqdr_cnn", final_relu=False, circuit=None)
    torch.nn.init.constant_(raw.classifier.bias, -5.0)
    assert (raw(x) < 0).all()
    with pytest.raises(ConfigError, match="noise=True.*ring"):
        create_model("sqdr_cnn", noise=True, entangler="ring")
    with pytest.raises(ConfigError, match="noise=True.*None"):
        create_model("sqdr_cnn", noise=True, circuit=None)
    with pytest.raises(ConfigError, match="weight_init"):
        create_model("sqdr_cnn", weight_init="xavier")
    with pytest.raises(ValueRangeError):
        create_model("sqdr_cnn")(torch.randn(2, 1, 16, 16))


def test_sqdr_has_no_state_between_batches():
    model = create_model("sqdr_cnn", time_steps=6).eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        first = model(x)
        torch.testing.assert_close(model(x), first)
        assert model(x[:3]).shape == (3, 10)
        torch.testing.assert_close(model(x[:3]), first[:3])


def test_cnn_qnn_sizes():
    model = create_model("cnn_blog", img_size=28, in_chans=1, num_classes=4)
    assert model.flat_features == 64 * 5 * 5
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 4)
    assert create_model("cnn_qnn", img_size=(40, 24))(torch.rand(2, 3, 40, 24)).shape == (2, 10)
    with pytest.raises(ShapeError, match="built for 32x32"):
        create_model("cnn_qnn")(torch.rand(2, 3, 28, 28))
    with pytest.raises(ConfigError, match="at least 10x10"):
        create_model("cnn_qnn", img_size=8)
    with pytest.raises(ConfigError, match="needs n_qubits"):
        create_model("cnn_qnn", n_qubits=None)
