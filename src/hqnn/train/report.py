"""The report of a study: ``report.md``, a self-contained ``report.html`` and the plots.

Both documents are rendered from one list of blocks (headings, paragraphs, verdict lines, tables,
figures), so they say the same thing: the verdict first, then the arms (mean ± std and 95%
interval over seeds), the paired comparisons, the per-seed scores, and PNG plots made with
matplotlib's object API (no pyplot, no global backend switch): learning curves per arm (mean and
a ±1 std band over seeds, train and validation), normalised confusion matrices (counts summed over
seeds), per-class F1, and for two-phase models the fusion gate α over epochs. ``report.md`` links
the PNGs under ``plots/``; ``report.html`` embeds them as base64 data URIs and loads nothing from
anywhere else.
"""

from __future__ import annotations

import base64
import html
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hqnn.models.arms import ARMS
from hqnn.train.stats import Summary, format_number, format_p
from hqnn.train.study import METRIC_LABELS, METRICS, PRIMARY_METRIC, StudyResult

__all__ = ["write_report", "verdict_table", "ARM_DESCRIPTIONS"]

log = logging.getLogger(__name__)

ARM_DESCRIPTIONS = {
    "hybrid": "the preset's hybrid model",
    "twin": "its classical twin: a Linear + tanh of the circuit's widths in its place",
    "no_entanglement": "the same circuit without entangling gates (controlled rotations act on their target alone)",
    "frozen": "the circuit's weights fixed at their initial values (a random feature map)",
}
_CURVES = (("loss", "loss", (0.0, np.inf)), ("f1", "macro-F1", (0.0, 1.0)))  # key, label, range
_DPI = 100


@dataclass(frozen=True)
class _Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class _Figure:
    title: str
    path: Path  # relative to the study directory


def _color(arm: str) -> str:
    return f"C{ARMS.index(arm)}"  # one colour per arm in every plot


def _mean_std(summary: Summary, digits: int = 3) -> str:
    spread = "" if summary.std is None else f" ± {summary.std:.{digits}f}"
    return f"{summary.mean:.{digits}f}{spread}"


def _interval(ci: tuple[float, float] | None) -> str:
    return "–" if ci is None else f"[{format_number(ci[0])}, {format_number(ci[1])}]"


def _p_cell(p: float | None) -> str:
    return "–" if p is None else format_p(p).removeprefix("p = ").removeprefix("p ")


def _cell(summary: Summary) -> str:
    return f"{_mean_std(summary)} {_interval(summary.ci95)}"


def verdict_table(study: StudyResult) -> str:
    """The arms (mean ± std of the test scores over seeds) and the verdict lines, as fixed-width text."""
    arm_width = max(len("arm"), *(len(name) for name in study.arms))
    model_width = max(len("model"), *(len(arm.model_name) for arm in study.arms.values()))
    header = (
        f"{'arm':<{arm_width}}  {'model':<{model_width}} {'params':>10} {'quantum':>7} {'test acc':>14} "
        f"{'macro-F1':>14} {'balanced acc':>14} {'s/epoch':>8}"
    )
    lines = [header, "-" * len(header)]
    for name, arm in study.arms.items():
        first = arm.runs[0]
        lines.append(
            f"{name:<{arm_width}}  {arm.model_name:<{model_width}} {first.n_params:>10,} {first.n_quantum_params:>7} "
            + " ".join(f"{_mean_std(arm.summaries[m]):>14}" for m in METRICS)
            + f" {arm.mean_of('seconds_per_epoch'):>8.2f}"
        )
    seeds = ", ".join(map(str, study.seeds))
    return "\n".join([*lines, "", f"test scores over {len(study.seeds)} seed(s) ({seeds}); hybrid − arm, 95% CI:",
                      *study.verdicts()])


# -- plots -----------------------------------------------------------------------------------------
def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _series(study: StudyResult, arm: str, key: str) -> np.ndarray | None:
    """(seeds, epochs) of a per-epoch column, or None when the runs do not record it."""
    runs = study.arms[arm].runs
    if not all(runs[0].history) or any(key not in row for run in runs for row in run.history):
        return None
    return np.array([[row[key] for row in run.history] for run in runs], dtype=np.float64)


def _band(axis, values: np.ndarray, color: str, style: str, label: str, bounds=(-np.inf, np.inf)) -> None:
    """Mean over seeds as a line, ±1 std as a band (clipped to the metric's range)."""
    epochs = np.arange(1, values.shape[1] + 1)
    mean = values.mean(axis=0)
    axis.plot(epochs, mean, style, color=color, label=label, linewidth=1.6, marker="o", markersize=2.5)
    if values.shape[0] > 1:
        std = values.std(axis=0, ddof=1)
        low, high = np.clip(mean - std, *bounds), np.clip(mean + std, *bounds)
        axis.fill_between(epochs, low, high, color=color, alpha=0.15, linewidth=0)


def _learning_curves(study: StudyResult, path: Path) -> bool:
    from matplotlib.ticker import MaxNLocator

    figure = _figure(11, 4.6)
    axes = figure.subplots(1, len(_CURVES))
    for axis, (key, label, bounds) in zip(axes, _CURVES):
        for arm in study.arms:
            for split, style in (("val", "-"), ("train", "--")):
                values = _series(study, arm, f"{split}_{key}")
                if values is not None:
                    _band(axis, values, _color(arm), style, f"{arm} {split}", bounds)
        axis.set(xlabel="epoch", ylabel=label, title=f"{label}: validation (solid), train (dashed)")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2 * len(study.arms),
                  fontsize=8)
    figure.savefig(path)
    return True


def _confusions(study: StudyResult, path: Path) -> bool:
    classes = study.classes
    figure = _figure(3.6 * len(study.arms) + 0.8, 3.9)
    axes = np.atleast_1d(figure.subplots(1, len(study.arms)))
    image = None
    for axis, (name, arm) in zip(axes, study.arms.items()):
        counts = np.sum([np.asarray(run.confusion, dtype=np.float64) for run in arm.runs], axis=0)  # (C, C)
        rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = axis.imshow(rates, vmin=0, vmax=1, cmap="Blues")
        if len(classes) <= 12:
            for (i, j), value in np.ndenumerate(rates):
                axis.text(j, i, f"{value:.2f}".lstrip("0") if value < 1 else "1", ha="center", va="center",
                          fontsize=6, color="white" if value > 0.6 else "black")
        ticks = range(len(classes)) if len(classes) <= 20 else []
        axis.set_xticks(list(ticks), [classes[k] for k in ticks], fontsize=7)
        axis.set_yticks(list(ticks), [classes[k] for k in ticks], fontsize=7)
        axis.set(title=name, xlabel="predicted", ylabel="true")
    figure.colorbar(image, ax=list(axes), shrink=0.8, label="fraction of the true class")
    figure.savefig(path)
    return True


def _per_class_f1(study: StudyResult, path: Path) -> bool:
    classes = study.classes
    figure = _figure(min(12.0, max(6.0, 0.3 * len(classes) * len(study.arms) + 2)), 3.8)
    axis = figure.subplots()
    positions, width = np.arange(len(classes)), 0.8 / len(study.arms)
    for k, (name, arm) in enumerate(study.arms.items()):
        means = [s.mean for s in arm.per_class_f1]
        errors = [0.0 if s.std is None else s.std for s in arm.per_class_f1]
        axis.bar(positions + (k - (len(study.arms) - 1) / 2) * width, means, width, yerr=errors, capsize=2,
                 color=_color(name), label=name, error_kw={"linewidth": 0.8})
    axis.set_xticks(positions, classes, fontsize=8)
    axis.set(xlabel="class", ylabel="test F1", ylim=(0, 1.05), title="per-class test F1: mean ± std over seeds")
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, ncol=len(study.arms))
    figure.savefig(path)
    return True


def _alpha(study: StudyResult, path: Path) -> bool:
    from matplotlib.ticker import MaxNLocator

    curves = {arm: _series(study, arm, "alpha") for arm in study.arms}
    if all(values is None for values in curves.values()):
        return False
    figure = _figure(6, 3.6)
    axis = figure.subplots()
    for arm, values in curves.items():
        if values is not None:
            _band(axis, values, _color(arm), "-", arm, (0.0, 1.0))
    axis.set(xlabel="epoch", ylabel="α = sigmoid(alpha_raw)", ylim=(0, 1), title="fusion gate α of the quantum branch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.savefig(path)
    return True


_PLOTS = (
    ("learning_curves.png", "Learning curves (mean and ±1 std over seeds)", _learning_curves),
    ("confusion.png", "Confusion matrices on the test split (rows normalised, counts summed over seeds)", _confusions),
    ("per_class_f1.png", "Per-class test F1", _per_class_f1),
    ("alpha.png", "Fusion gate α over epochs", _alpha),
)


# -- the documents ---------------------------------------------------------------------------------
def _blocks(study: StudyResult, figures: list[_Figure]) -> list[tuple[str, object]]:
    config = study.config
    hybrid = study.arms["hybrid"]
    n_test = int(np.sum(hybrid.runs[0].confusion))
    seeds = ", ".join(map(str, study.seeds))
    blocks: list[tuple[str, object]] = [
        ("h1", f"Study: {config.preset}"),
        ("p", (f"Preset: {config.description.rstrip('.')}. " if config.description else "")
              + f"This study: model {config.model.name}; {len(study.seeds)} seed(s) ({seeds}); "
              f"{config.train.epochs} epoch(s), batch {config.train.batch_size}, "
              f"{config.optim.name} lr {config.optim.lr:g}; "
              f"data {config.data.name}, {n_test} test items, {len(study.classes)} classes."),
        ("h2", "Verdict"),
        ("verdicts", study.verdicts()),
        ("p", "Each line is hybrid minus another arm on the test macro-F1: the mean over seeds of the per-seed "
              "difference (seed k trains every arm on the same split, with the same batch order and initial trunk "
              "weights), its 95% t-interval, and the two-sided paired t-test p-value. p ≥ 0.05 means these seeds "
              "cannot tell the arms apart, not that they are equal; "
              "no correction for multiple comparisons is applied."),
        ("h2", "Arms"),
        ("table", _Table(
            ["arm", "what it is", "parameters (quantum)", *(f"test {METRIC_LABELS[m]}" for m in METRICS),
             "s/epoch", "samples/s"],
            [
                [name, f"{arm.model_name}: {ARM_DESCRIPTIONS[name]}",
                 f"{arm.runs[0].n_params:,} ({arm.runs[0].n_quantum_params})",
                 *(_cell(arm.summaries[m]) for m in METRICS),
                 f"{arm.mean_of('seconds_per_epoch'):.3f}", f"{arm.mean_of('samples_per_s'):,.0f}"]
                for name, arm in study.arms.items()
            ],
        )),
        ("p", "Scores are mean ± standard deviation over seeds [95% t-interval of the mean]. Parameters are trainable "
              "ones (the frozen arm's circuit weights are fixed). Seconds per epoch and samples per second are the "
              "training passes' own time, averaged over seeds."),
    ]
    if study.comparisons:
        rows = [
            [f"hybrid − {other}", METRIC_LABELS[metric], format_number(c.difference), _interval(c.ci95),
             _p_cell(c.p_value), _p_cell(c.p_wilcoxon), str(c.n)]
            for other, by_metric in study.comparisons.items()
            for metric, c in by_metric.items()
        ]
        n = len(study.seeds)
        blocks += [
            ("h2", "Paired comparisons"),
            ("table", _Table(["comparison", "test metric", "mean difference", "95% CI", "p (paired t)",
                              "p (Wilcoxon)", "seeds"], rows)),
            ("p", f"Differences are hybrid minus the other arm, seed by seed. The Wilcoxon signed-rank test makes no "
                  f"normality assumption but is coarse on few seeds: with {n} seeds its smallest two-sided p-value is "
                  f"{2 / 2 ** n:.2g}." if n >= 3 else "With fewer than 3 seeds no test is run."),
        ]
    blocks += [
        ("h2", "Per seed"),
        ("table", _Table(
            ["arm", *(f"seed {s}" for s in study.seeds)],
            [[name, *(f"{v:.3f}" for v in arm.values(PRIMARY_METRIC))] for name, arm in study.arms.items()],
        )),
        ("p", f"Test {METRIC_LABELS[PRIMARY_METRIC]} of each run (the weights of its best validation epoch)."),
        ("h2", "Plots"),
        *(("figure", figure) for figure in figures),
        ("h2", "Runs"),
        ("p", "Each run is a trainer run directory (checkpoint, per-epoch metrics, model.pt, test predictions) under "
              f"{study.study_dir / 'runs'}; study.json holds every number of this report. Circuits ran on: "
              + ", ".join(f"{name} {arm.runs[0].sim_method}" for name, arm in study.arms.items()
                          if arm.runs[0].sim_method)
              + "."),
    ]
    env = study.environment
    if env:
        machine, versions = env.get("machine", {}), env.get("versions", {})
        blocks.append(("p", f"Machine: {machine.get('platform')}, {machine.get('cpus')} CPU(s), "
                            f"{machine.get('threads')} torch thread(s), device {env.get('device')}; "
                            + ", ".join(f"{k} {v}" for k, v in versions.items() if v)
                            + f"; finished {env.get('finished')}."))
    return blocks


def _markdown(blocks) -> str:
    out = []
    for kind, value in blocks:
        if kind == "h1":
            out.append(f"# {value}\n")
        elif kind == "h2":
            out.append(f"## {value}\n")
        elif kind == "p":
            out.append(f"{value}\n")
        elif kind == "verdicts":
            out.append("\n".join(f"- **{line}**" for line in value) + "\n")
        elif kind == "table":
            cells = [[c.replace("|", "\\|") for c in row] for row in [value.header, *value.rows]]
            lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(value.header)]
            out.append("\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells[1:]]) + "\n")
        elif kind == "figure":
            out.append(f"**{value.title}**\n\n![{value.title}]({value.path.as_posix()})\n")
    return "\n".join(out)


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1180px; margin: 2em auto;
       padding: 0 1.2em; color: #1d2125; line-height: 1.5; }
h1 { font-size: 1.7em; margin-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13.5px; }
th, td { border: 1px solid #d0d7de; padding: 5px 9px; text-align: right; vertical-align: top; }
th:first-child, td:first-child, td:nth-child(2) { text-align: left; }
thead th { background: #f3f5f7; }
tbody tr:nth-child(even) { background: #fafbfc; }
ul.verdicts { list-style: none; padding: 0; }
ul.verdicts li { background: #f3f8f4; border-left: 4px solid #2f8f4e; margin: .4em 0; padding: .55em .9em;
                 font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 14px; }
figure { margin: 1.2em 0; } figcaption { font-weight: 600; margin-bottom: .4em; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
p { max-width: 60em; }
"""


def _html(blocks, study_dir: Path, title: str) -> str:
    esc = html.escape
    out = [f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
           f"<style>{_STYLE}</style>\n</head>\n<body>"]
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{esc(value)}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{esc(value)}</p>")
        elif kind == "verdicts":
            out.append('<ul class="verdicts">' + "".join(f"<li>{esc(line)}</li>" for line in value) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{esc(c)}</th>" for c in value.header)
            body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in value.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure":
            data = base64.b64encode((study_dir / value.path).read_bytes()).decode("ascii")
            out.append(f'<figure><figcaption>{esc(value.title)}</figcaption>'
                       f'<img alt="{esc(value.title)}" src="data:image/png;base64,{data}"></figure>')
    out.append("</body>\n</html>\n")
    return "\n".join(out)


def write_report(study: StudyResult) -> tuple[Path, Path]:
    """Write ``plots/*.png``, ``report.md`` and ``report.html`` into the study directory.

    Args:
        study: a finished study.

    Returns:
        The paths of ``report.md`` and ``report.html``.
    """
    from hqnn.train.checkpoint import atomic_write

    plot_dir = study.study_dir / "plots"
    plot_dir.mkdir(exist_ok=True)
    figures = []
    for name, title, draw in _PLOTS:
        if draw(study, plot_dir / name):
            figures.append(_Figure(title, Path("plots") / name))
    blocks = _blocks(study, figures)
    md_path, html_path = study.study_dir / "report.md", study.study_dir / "report.html"
    markdown, page = _markdown(blocks), _html(blocks, study.study_dir, f"hqnn study: {study.config.preset}")
    atomic_write(md_path, lambda tmp: tmp.write_text(markdown, encoding="utf-8"))
    atomic_write(html_path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    log.info("report: %s", html_path)
    return md_path, html_path
