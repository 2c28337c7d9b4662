"""ResNet: torchvision key layout, loading torchvision-format weight files, the quantum head's phases."""

import pytest
import torch

from hqnn.exceptions import ConfigError, DataError
from hqnn.models import ResNet, ResNetQHead, create_model, load_torchvision_weights


@pytest.fixture(scope="module")
def imagenet_resnet18_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(ResNet(18, num_classes=1000).state_dict(), path)
    return path


def test_state_dict_uses_torchvision_names():
    keys = ResNet(18).state_dict().keys()
    for key in ["conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
                "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean", "layer4.1.conv2.weight",
                "fc.weight", "fc.bias", "bn1.num_batches_tracked"]:
        assert key in keys
    assert "layer1.0.downsample.0.weight" not in keys
    assert len(keys) == 122  # torchvision resnet18().state_dict() has 122 entries
    assert len(ResNet(34).state_dict()) == 218


def test_stems_and_bad_arguments():
    assert ResNet(18, stem="small").forward_features(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 4, 4)
    assert ResNet(18).forward_features(torch.zeros(1, 3, 64, 64)).shape == (1, 512, 2, 2)
    with pytest.raises(ConfigError, match="depth 50"):
        ResNet(50)
    with pytest.raises(ConfigError, match="stem"):
        ResNet(18, stem="cifar")


def test_load_adapts_conv1_and_keeps_fresh_fc(imagenet_resnet18_file):
    source = torch.load(imagenet_resnet18_file)
    model = ResNet(18, num_classes=10, in_chans=5)
    fresh_fc = model.fc.weight.detach().clone()
    load_torchvision_weights(model, imagenet_resnet18_file)
    conv1 = model.conv1.weight.detach()
    torch.testing.assert_close(conv1[:, :3], source["conv1.weight"])
    rgb_mean = source["conv1.weight"].mean(1)
    torch.testing.assert_close(conv1[:, 3], rgb_mean)
    torch.testing.assert_close(conv1[:, 4], rgb_mean)
    torch.testing.assert_close(model.layer3[1].conv2.weight.detach(), source["layer3.1.conv2.weight"])
    torch.testing.assert_close(model.bn1.running_mean, source["bn1.running_mean"])
    torch.testing.assert_close(model.fc.weight.detach(), fresh_fc)


def test_load_into_single_channel_and_same_classes(imagenet_resnet18_file):
    source = torch.load(imagenet_resnet18_file)
    gray = load_torchvision_weights(ResNet(18, in_chans=1, num_classes=1000), imagenet_resnet18_file)
    torch.testing.assert_close(gray.conv1.weight.detach()[:, 0], source["conv1.weight"].mean(1))
    torch.testing.assert_close(gray.fc.weight.detach(), source["fc.weight"])


def test_load_into_quantum_head_leaves_quantum_branch(imagenet_resnet18_file):
    model = ResNetQHead(18, num_classes=10, circuit=None)
    before = model.pre_q.weight.detach().clone()
    load_torchvision_weights(model, imagenet_resnet18_file)
    torch.testing.assert_close(model.pre_q.weight.detach(), before)
    assert model.alpha_raw.item() == -20.0


def test_load_errors(imagenet_resnet18_file, tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_torchvision_weights(ResNet(18), tmp_path / "absent.pth")
    with pytest.raises(DataError, match="unexpected keys.*layer1.2"):
        load_torchvision_weights(ResNet(18), _saved(ResNet(34).state_dict(), tmp_path / "r34.pth"))
    broken = torch.load(imagenet_resnet18_file)
    del broken["layer2.0.bn1.weight"]
    with pytest.raises(DataError, match="missing keys.*layer2.0.bn1.weight"):
        load_torchvision_weights(ResNet(18), _saved(broken, tmp_path / "broken.pth"))
    with pytest.raises(DataError, match="stem 'small'.*conv1.weight"):
        load_torchvision_weights(ResNet(18, stem="small"), imagenet_resnet18_file)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read"):
        load_torchvision_weights(ResNet(18), tmp_path / "junk.pth")


def _saved(state, path):
    torch.save(state, path)
    return path


def test_quantum_head_fusion_formula():
    torch.manual_seed(0)
    model = create_model("resnet34_qhead", depth=18, stem="small", num_classes=7).eval()
    with torch.no_grad():
        model.alpha_raw.fill_(0.3)
        feats = model.forward_features(torch.rand(2, 3, 16, 16))
        pooled = feats.mean((2, 3))
        expected = model.fc(pooled) + torch.sigmoid(torch.tensor(0.3)) * model.post_q(model.q_head(model.pre_q(pooled)))
        torch.testing.assert_close(model.forward_head(feats), expected)


def test_quantum_head_phases():
    model = create_model("resnet34_qhead", depth=18, stem="small", num_classes=5)
    branch = {id(p) for m in (model.pre_q, model.q_head, model.post_q) for p in m.parameters()}
    branch.add(id(model.alpha_raw))

    trainable = model.set_phase("A")
    assert model.alpha_raw.item() == -20.0 and not model.alpha_raw.requires_grad
    assert {id(p) for p in trainable} == {id(p) for p in model.parameters() if id(p) not in branch}
    assert all(p.requires_grad == (id(p) not in branch) for p in model.parameters())
    model(torch.rand(2, 3, 16, 16)).sum().backward()
    assert model.q_head.weights.grad is None and model.conv1.weight.grad is not None

    trainable = model.set_phase("B")
    assert model.alpha_raw.item() == 0.0
    assert len(trainable) == len(list(model.parameters())) and all(p.requires_grad for p in model.parameters())
    with pytest.raises(ConfigError, match="phase 'C'"):
        model.set_phase("C")
