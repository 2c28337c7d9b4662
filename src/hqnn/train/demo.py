"""``hqnn demo``: the main job on the embedded default dataset (scikit-learn's digits)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    import math

    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from hqnn.qnn import QuantumLayer
    from hqnn.templates.recipes import rezk_qnn

    torch.manual_seed(args.seed)
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    perm = torch.randperm(len(x))
    train, test = perm[:1400], perm[1400:]
    model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 4), nn.Tanh(),
                          QuantumLayer(rezk_qnn()), nn.Linear(4, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for epoch in range(args.epochs):
        for idx in train[torch.randperm(len(train))].split(64):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (model(x[test]).argmax(1) == y[test]).float().mean().item()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.3f}  test accuracy {acc:.3f}")
    return 0 if math.isfinite(loss.item()) else 1
