"""ResNet-18/34 (He et al., CVPR 2016) with torchvision's module names, an ImageNet or a small-image
stem, and loading of torchvision-format weight files.

Written here (no torchvision dependency) for the CIFAR-100 hybrids of
``Diana1800/cifar100-quantum-hybrid-resnet`` (spec section 4); the quantum-head hybrid lives in
:mod:`hqnn.models.resnet_hybrid`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from hqnn.exceptions import ConfigError, DataError
from hqnn.models._registry import register_variants

__all__ = ["BasicBlock", "RESNET_STAGES", "ResNet", "load_torchvision_weights"]

logger = logging.getLogger(__name__)

RESNET_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
STEMS = ("imagenet", "small")
TORCHVISION_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.", "fc.")


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x))`` with 3x3 convs; ``downsample`` is a
    1x1 conv + BN when the stride or width changes, else identity."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_chs, out_chs, 1, stride, bias=False), nn.BatchNorm2d(out_chs))
            if stride != 1 or in_chs != out_chs
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet(nn.Module):
    """ResNet-18/34 with torchvision's layout and state-dict keys (``conv1``, ``bn1``, ``layer1.0.conv1``,
    ..., ``fc``) and torchvision's init (Kaiming-normal fan-out convs, BN 1/0).

    Stems: ``"imagenet"`` = conv 7x7/2 + BN + ReLU + maxpool 3x3/2 (torchvision; inputs shrink 32x);
    ``"small"`` = conv 3x3/1 + BN + ReLU, no maxpool (the usual CIFAR stem; inputs shrink 8x).

    Args:
        depth: 18 or 34.
        num_classes: classes.
        in_chans: input channels (5 for the quantum feature-map channels of spec 4.4).
        stem: ``"imagenet"`` or ``"small"``.

    Raises:
        ConfigError: for another depth or stem.

    Example:
        >>> ResNet(18, num_classes=10, stem="small")(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    layer1: nn.Sequential  # the four stages, set in __init__ under torchvision's names
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, depth: int = 18, num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet"):
        super().__init__()
        if depth not in RESNET_STAGES:
            raise ConfigError(f"unsupported ResNet depth {depth}; expected one of {sorted(RESNET_STAGES)}")
        if stem not in STEMS:
            raise ConfigError(f"unknown ResNet stem {stem!r}; expected one of {STEMS}")
        self.num_classes, self.in_chans, self.stem = num_classes, in_chans, stem
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_chans, 64, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        in_chs = 64
        for index, (n_blocks, width) in enumerate(zip(RESNET_STAGES[depth], (64, 128, 256, 512)), start=1):
            stride = 1 if index == 1 else 2
            blocks = [BasicBlock(in_chs, width, stride)] + [BasicBlock(width, width) for _ in range(n_blocks - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
            in_chs = width
        self.num_features = in_chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_chs, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, h, w)

    def pool(self, feats: torch.Tensor) -> torch.Tensor:
        """Global average pool: ``(B, 512, h, w) -> (B, 512)``."""
        return self.avgpool(feats).flatten(1)

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(feats))  # (B, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB filters ``(out, 3, k, k)`` -> ``(out, in_chans, k, k)``: the first three channels copy RGB
    (when ``in_chans >= 3``); every other channel is the mean of the RGB filters (spec 4.4)."""
    mean = weight.mean(dim=1, keepdim=True)  # (out, 1, k, k)
    if in_chans < 3:
        return mean.repeat(1, in_chans, 1, 1)
    return torch.cat([weight, mean.repeat(1, in_chans - 3, 1, 1)], dim=1)


def load_torchvision_weights(model: ResNet, path: str | Path) -> ResNet:
    """Load a torchvision ResNet state-dict file (e.g. ``resnet34-b627a593.pth``) into ``model``.

    ``conv1`` is adapted when ``model.in_chans != 3`` (:func:`_adapt_input_conv`); ``fc`` is skipped,
    keeping the model's fresh head, when its class count differs (e.g. 100 vs ImageNet's 1000).
    Parameters the model adds beyond torchvision's (e.g. a quantum head) are left as they are.

    Args:
        model: a :class:`ResNet` (or subclass) of the file's depth with the ``"imagenet"`` stem.
        path: a file saved with ``torch.save(state_dict)``, torchvision key names.

    Returns:
        ``model``, updated in place.

    Raises:
        DataError: if the file is missing or unreadable, lacks keys the model needs, has keys the
            model lacks (another depth), or a tensor has another shape (e.g. the small stem).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"torchvision weight file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupted or foreign files
        raise DataError(f"cannot read torchvision weights from {path}: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path} does not hold a state_dict (a dict of tensors)")
    state = dict(state)
    own = {k: v for k, v in model.state_dict().items() if k.startswith(TORCHVISION_PREFIXES)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise DataError(
            f"{path} does not match this ResNet: missing keys {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected keys {unexpected[:8]}{'...' if len(unexpected) > 8 else ''} (is it another depth?)"
        )
    if state["conv1.weight"].shape[1] == 3 and model.in_chans != 3:
        state["conv1.weight"] = _adapt_input_conv(state["conv1.weight"], model.in_chans)
    if state["fc.weight"].shape != own["fc.weight"].shape:
        logger.info("skipping fc of %s: %s classes there, %s here", path, len(state["fc.weight"]), model.num_classes)
        del state["fc.weight"], state["fc.bias"]
    mismatched = [
        f"{k}: file {tuple(v.shape)}, model {tuple(own[k].shape)}" for k, v in state.items() if v.shape != own[k].shape
    ]
    if mismatched:
        raise DataError(f"{path} has tensors of other shapes than this ResNet (stem {model.stem!r}): {mismatched}")
    model.load_state_dict(state, strict=False)
    return model


register_variants(
    ResNet,
    {
        "resnet18": dict(depth=18, num_classes=10, param_count=11_181_642, summary="ResNet-18, ImageNet stem"),
        "resnet18_small": dict(
            depth=18,
            num_classes=10,
            stem="small",
            param_count=11_173_962,
            summary="ResNet-18, 3x3/1 stem for small images",
        ),
        "resnet34": dict(
            depth=34, num_classes=100, param_count=21_335_972, summary="ResNet-34, CIFAR-100 baseline (Diana1800)"
        ),
        "resnet34_qchannels": dict(
            depth=34,
            num_classes=100,
            in_chans=5,
            param_count=21_342_244,
            input_size=(5, 32, 32),
            summary="ResNet-34 on RGB + 2 quantum feature-map channels (Diana1800 quantum_channels)",
        ),
    },
)
