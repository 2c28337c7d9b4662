"""``hqnn bench train``: samples per second of one whole training step, the trainer's path against eager PyTorch.

For each seed model at its preset's batch and input size, two paths are timed in the same process,
alternating sample by sample (so load from other work hits both alike):

* ``hqnn``: a :class:`~hqnn.train.trainer.Trainer` built from the preset on synthetic data of the
  preset's shape, with the trainer's default speed options (``train.small_map_convs``,
  ``train.native_layers``, ``train.fused_optimizer``, ``train.flat_params``) and the model's own
  (:data:`BENCH_MODELS`), stepping through what its training pass does per batch: the next batch
  from its loader, ``data.prepare`` (augment, resize, normalise) and
  :meth:`~hqnn.train.trainer.Trainer.train_step`, under the settings of its ``fit``
  (``train.deterministic``).
* ``eager``: the same model from ``create_model`` with the same arguments and optimiser (PyTorch's
  own class for it, e.g. ``torch.optim.NAdam`` where the trainer has ``OnePassNAdam``), a plain
  forward / cross-entropy / backward / step loop on one pre-made contiguous batch: PyTorch's own
  convolutions and its default optimiser implementation, default memory format, no compilation, no
  data loading.

A sample is the mean over enough back-to-back steps to last ``min_sample_s``; a path's figure is the
median over ``repeats`` samples. ``data_share`` is the time in the loader and ``prepare`` over the
whole step (0 for ``eager``). ``quantum_share`` is the time inside :class:`~hqnn.qnn.QuantumLayer`
forward and backward per step, over the path's step time; it is measured on separate eager steps
of the same model and batch with module hooks around the forward and tensor gradient hooks on the
layer's output (backward starts) and input (backward ends), so that the timed steps carry no hooks.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hqnn.exceptions import ConfigError

__all__ = ["BENCH_MODELS", "BenchModel", "QuantumTimer", "run_train_bench", "synthetic_data", "train_table"]


@dataclass(frozen=True)
class BenchModel:
    """A seed model as benchmarked: its preset, and the trainer speed options it runs with.

    ``train_items`` is the preset's training split on the real data (for the time per epoch).
    """

    model: str
    preset: str
    options: tuple[str, ...]
    train_items: int


# Options beyond the trainer's defaults, chosen by measurement on a 2-core VM (benchmarks/README.md):
# channels-last halves the SP&A-Net trunk's conv time but slows the spiking CNN's tiny convs 2x and
# does nothing for the blog CNN. torch.compile (inductor) added ~1.2x on HCQDL before the small-map
# convs and the fused optimiser, 1.02x after them (619 vs 605 samples/s, paired against eager, 2
# threads), for a first step of 13 s (warm cache) to 4 min; it gained 1.3x on the blog CNN at 1
# thread but lost 2x at 2 busy threads, and compiles SQDR-CNN whole but makes its step slower.
BENCH_MODELS: dict[str, BenchModel] = {
    m.model: m
    for m in (
        # WM-811K: 172,950 labelled maps, 20% test, 25% of the rest validation
        BenchModel("hcqdl", "wm811k_hcqdl", (), 103_770),  # its preset sets train.channels_last
        # MNIST: 60,000 training images, 10% validation
        BenchModel("sqdr_cnn", "mnist_sqdr", (), 54_000),
        BenchModel("sqdr_cnn_noisy", "mnist_sqdr", (), 54_000),
        # CIFAR-10: 50,000 training images, 10% validation
        BenchModel("cnn_qnn", "cifar10_cnn_qnn", (), 45_000),
    )
}


def synthetic_data(config, n_batches: int = 4):
    """A :class:`~hqnn.train.loaders.DataBundle` of random images of the preset's stored shape.

    ``n_batches`` full training batches, one batch each for validation and test; the preset's
    transforms and (when it weights the loss) class weights from the random labels.
    """
    from hqnn.data import ImageDataset, class_weights, dataset_info
    from hqnn.train.loaders import DataBundle, build_transforms

    info = dataset_info(config.data.name)
    size = config.data.image_size or (info.image_shape[-1] if info.image_shape else 32)
    chans = info.image_shape[0] if info.image_shape else (3 if config.data.wafer_encoding == "onehot" else 1)
    n_classes = info.n_classes
    if n_classes is None:
        raise ConfigError(
            f"{config.data.name}: synthetic benchmark data needs a dataset with a fixed number of classes; got None"
        )
    batch = config.train.batch_size
    gen = torch.Generator().manual_seed(0)

    def split(n: int, name: str) -> ImageDataset:
        images = torch.randint(0, 256, (n, chans, size, size), generator=gen, dtype=torch.uint8)
        labels = torch.arange(n) % n_classes
        return ImageDataset(images, labels, [str(k) for k in range(n_classes)], name="synthetic", split=name)

    train, val, test = split(n_batches * batch, "train"), split(batch, "val"), split(batch, "test")
    weights = None
    if config.data.class_weights:
        weights = torch.as_tensor(class_weights(train.labels.numpy(), n_classes), dtype=torch.float32)
    train_tf, eval_tf = build_transforms(config.data, size)
    return DataBundle(train, val, test, n_classes, chans, train_tf, eval_tf, weights, None, size)


class QuantumTimer:
    """Seconds spent in the :class:`~hqnn.qnn.QuantumLayer` modules of a model, forward and backward.

    Forward: a pre-hook and a hook on each layer. Backward: from the gradient of the layer's output
    (its backward is next) to the gradient of its input (its backward is done); a layer whose input
    needs no gradient counts its forward only. ``clock`` reads seconds (``time.perf_counter``).
    """

    def __init__(self, model: nn.Module, clock: Callable[[], float] = time.perf_counter):
        from hqnn.qnn import QuantumLayer

        self.seconds = 0.0
        self._clock = clock
        self._handles = []
        self._started: dict[int, float] = {}
        for layer in model.modules():
            if isinstance(layer, QuantumLayer):
                self._handles.append(layer.register_forward_pre_hook(self._before))
                self._handles.append(layer.register_forward_hook(self._after))

    def _before(self, module, args) -> None:
        x = args[0]
        key = id(module)
        if x.requires_grad:
            x.register_hook(lambda grad: self._stop(key))
        self._started[key] = self._clock()

    def _after(self, module, args, out) -> None:
        key = id(module)
        self.seconds += self._clock() - self._started.pop(key)
        if out.requires_grad:
            out.register_hook(lambda grad: self._start(key))

    def _start(self, key: int) -> None:
        self._started[key] = self._clock()

    def _stop(self, key: int) -> None:
        if key in self._started:
            self.seconds += self._clock() - self._started.pop(key)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _sample(step: Callable[[], float], min_sample_s: float) -> tuple[float, float]:
    """Back-to-back steps for at least ``min_sample_s``: (seconds per step, data seconds per step)."""
    n, data, started = 0, 0.0, time.perf_counter()
    while True:
        data += step()
        n += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_sample_s:
            return elapsed / n, data / n


def _bench_model(entry: BenchModel, repeats: int, min_sample_s: float, device: str, log) -> list[dict]:
    from hqnn.models import create_model
    from hqnn.train.optim import build_optimizer
    from hqnn.train.presets import load_config
    from hqnn.train.trainer import Trainer, model_arguments, runtime_settings

    overrides = [f"model.name={entry.model}", "run.progress=false", f"train.device={device}", *entry.options]
    config = load_config(entry.preset, overrides)
    data = synthetic_data(config)
    with tempfile.TemporaryDirectory(prefix="hqnn-bench-train-") as folder:
        trainer = Trainer(config, data, entry.model, Path(folder) / entry.model)
        trainer.model.train()
        loader_iter = iter(trainer.loaders["train"])

        def hqnn_step() -> float:
            nonlocal loader_iter
            started = time.perf_counter()
            try:
                images, labels, index = next(loader_iter)
            except StopIteration:
                loader_iter = iter(trainer.loaders["train"])
                images, labels, index = next(loader_iter)
            images, labels = images.to(trainer.device), labels.to(trainer.device)
            inputs = data.prepare("train", images, index, True)
            data_s = time.perf_counter() - started
            float(trainer.train_step(inputs, labels))
            return data_s

        torch.manual_seed(config.run.seed)
        model = create_model(entry.model, **model_arguments(entry.model, config.model.args, data)).to(trainer.device)
        model.train()
        optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], config.optim)
        weights = None if data.class_weights is None else data.class_weights.to(trainer.device)
        criterion = nn.CrossEntropyLoss(weight=weights, label_smoothing=config.train.label_smoothing)
        images, labels, index = next(iter(trainer.loaders["train"]))
        inputs = data.prepare("train", images, index, True).to(trainer.device).contiguous()
        labels = labels.to(trainer.device)

        def eager_step() -> float:
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            float(loss.detach())
            return 0.0

        def settings(path: str):  # the hqnn path runs under the trainer's fit() settings (deterministic kernels)
            return runtime_settings(config.train.deterministic) if path == "hqnn" else contextlib.nullcontext()

        with settings("hqnn"):
            started = time.perf_counter()
            hqnn_step()  # compiles when train.compile is on
            first_step_s = time.perf_counter() - started
            for _ in range(2):
                hqnn_step()
        for _ in range(2):
            eager_step()
        samples: dict[str, list[tuple[float, float]]] = {"hqnn": [], "eager": []}
        for r in range(repeats):  # alternating, the order swapped every round
            order = (("hqnn", hqnn_step), ("eager", eager_step))
            for path, step in order if r % 2 == 0 else order[::-1]:
                with settings(path):
                    samples[path].append(_sample(step, min_sample_s))
        timer = QuantumTimer(model)
        probes = []
        for _ in range(3):
            timer.seconds = 0.0
            eager_step()
            probes.append(timer.seconds)
        timer.remove()
        quantum_s = statistics.median(probes)
    rows = []
    batch = config.train.batch_size
    shape = [data.in_chans, data.image_size, data.image_size]
    for path, values in samples.items():
        step_s = statistics.median(s for s, _ in values)
        data_s = statistics.median(d for _, d in values)
        samples_per_s = round(batch / step_s, 1)
        row = {
            "model": entry.model, "path": path, "preset": entry.preset, "batch": batch, "input": shape,
            "samples_per_s": samples_per_s, "ms_per_step": round(step_s * 1e3, 2),
            "quantum_share": round(min(quantum_s / step_s, 1.0), 4), "data_share": round(data_s / step_s, 4),
            "options": speed_options(config) if path == "hqnn" else [],
        }
        if path == "hqnn":
            row["first_step_s"] = round(first_step_s, 2)
            row["epoch_minutes"] = round(entry.train_items / samples_per_s / 60, 1)
        rows.append(row)
        log(f"{entry.model:15s} {path:5s} {row['samples_per_s']:8.1f} samples/s  quantum {row['quantum_share']:.1%}"
            f"  data {row['data_share']:.1%}")
    return rows


SPEED_OPTIONS = ("small_map_convs", "native_layers", "fused_optimizer", "flat_params", "channels_last", "compile")


def speed_options(config) -> list[str]:
    """The trainer speed options that are on in ``config`` (defaults included), as overrides."""
    return [f"train.{name}=true" for name in SPEED_OPTIONS if getattr(config.train, name)]


def run_train_bench(models: list[str] | None = None, repeats: int = 5, min_sample_s: float = 1.0,
                    device: str = "cpu", log: Callable[[str], None] = lambda line: None) -> dict:
    """Time every model in ``models`` (default: all of :data:`BENCH_MODELS`) on both paths.

    Returns:
        ``{"results": [row, ...], "ratios": [{model, hqnn_vs_eager}, ...]}``; a row is
        ``{model, path, preset, batch, input, samples_per_s, ms_per_step, quantum_share, data_share,
        options}`` (``hqnn`` rows also ``first_step_s`` and ``epoch_minutes`` on the preset's data).

    Raises:
        ConfigError: an unknown model name.
    """
    names = models or list(BENCH_MODELS)
    unknown = [m for m in names if m not in BENCH_MODELS]
    if unknown:
        raise ConfigError(f"unknown bench models {unknown}; valid: {', '.join(BENCH_MODELS)}")
    results = []
    for name in names:
        results += _bench_model(BENCH_MODELS[name], repeats, min_sample_s, device, log)
    return {"results": results, "ratios": train_ratios(results)}


def train_ratios(results: list[dict]) -> list[dict]:
    """Per model, hqnn samples/s over eager samples/s (above 1: the trainer's path is faster)."""
    speed = {(r["model"], r["path"]): r["samples_per_s"] for r in results}
    return [{"model": m, "hqnn_vs_eager": round(speed[(m, "hqnn")] / speed[(m, "eager")], 2)}
            for m in dict.fromkeys(r["model"] for r in results) if (m, "hqnn") in speed and (m, "eager") in speed]


def train_table(report: dict) -> str:
    """The Markdown table of a train report: per model both paths' samples/s, the ratio and the shares."""
    rows = {(r["model"], r["path"]): r for r in report["results"]}
    ratios = {r["model"]: r["hqnn_vs_eager"] for r in report.get("ratios", [])}
    head = ["model", "batch", "eager samples/s", "hqnn samples/s", "hqnn vs eager ×", "quantum share",
            "data share", "hqnn options", "epoch (min)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model in dict.fromkeys(r["model"] for r in report["results"]):
        eager, ours = rows.get((model, "eager"), {}), rows.get((model, "hqnn"), {})
        lines.append("| " + " | ".join([
            model, str(ours.get("batch", eager.get("batch", ""))), f"{eager.get('samples_per_s', '')}",
            f"{ours.get('samples_per_s', '')}", f"{ratios.get(model, '')}",
            f"{ours['quantum_share']:.1%}" if ours else "", f"{ours['data_share']:.1%}" if ours else "",
            ", ".join(o.split("=")[0].removeprefix("train.") for o in ours.get("options", [])) or "-",
            f"{ours.get('epoch_minutes', '')}",
        ]) + " |")
    return "\n".join(lines)
