"""Studies: what a study writes, its statistics against scipy on the runs' own numbers, resuming an
interrupted study to identical numbers, the report, and `hqnn compare`'s refusals."""

import json
import re

import numpy as np
import pytest
from scipy import stats as scipy_stats

from hqnn.cli import main
from hqnn.train import run_study, twin_name
from hqnn.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from hqnn.train.report import write_report
from hqnn.train.study import ArmResult, RunRecord, StudyResult
from hqnn.train.trainer import Trainer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_tiny_study_writes_json_report_and_plots(tiny_config, tmp_path):
    config = tiny_config("epochs=1")
    result = run_study(config, seeds=3, arms=["hybrid", "twin"])
    study_dir = tmp_path / "runs" / "tiny-study"
    assert result.study_dir == study_dir
    study = json.loads((study_dir / "study.json").read_text())
    assert study["seeds"] == [0, 1, 2] and list(study["arms"]) == ["hybrid", "twin"]
    assert {"config", "machine", "versions", "comparisons"} <= set(study) and "scipy" in study["versions"]
    # every per-seed number is the one its run directory recorded
    for arm, model in (("hybrid", config.model.name), ("twin", twin_name(config))):
        entry = study["arms"][arm]
        assert entry["model_name"] == model and entry["runs"] == [f"runs/{arm}/seed{s}" for s in range(3)]
        summaries = [json.loads((study_dir / run / "summary.json").read_text()) for run in entry["runs"]]
        assert all(s["status"] == "finished" and s["arm"] == arm for s in summaries)
        for metric in ("accuracy", "f1", "balanced_accuracy"):
            values = [s["test"][metric] for s in summaries]
            assert entry["per_seed"][metric] == values
            assert entry["summary"][metric]["mean"] == pytest.approx(np.mean(values), abs=1e-12)
            assert entry["summary"][metric]["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        assert len(entry["summary"]["per_class_f1"]) == 10 and entry["per_seed"]["per_class_f1"][0] == [
            row["f1"] for row in summaries[0]["test_report"]["per_class"]
        ]
        assert {"n_params", "n_quantum_params", "seconds_per_epoch", "samples_per_s"} <= set(entry)
    assert study["arms"]["hybrid"]["n_quantum_params"] > 0 and study["arms"]["twin"]["n_quantum_params"] == 0
    pair = study["comparisons"]["hybrid-twin"]
    hybrid, twin = study["arms"]["hybrid"]["per_seed"]["f1"], study["arms"]["twin"]["per_seed"]["f1"]
    assert pair["difference"] == pytest.approx(np.mean(np.subtract(hybrid, twin)), abs=1e-12)
    assert pair["p_value"] == pytest.approx(scipy_stats.ttest_rel(hybrid, twin).pvalue, rel=1e-9)
    assert pair["p_wilcoxon"] == pytest.approx(scipy_stats.wilcoxon(np.subtract(hybrid, twin)).pvalue, rel=1e-9)
    assert len(pair["ci95"]) == 2 and pair["verdict"].startswith("hybrid − twin macro-F1: ")
    # the report: verdict first, then the arms, the comparisons; plots as files and embedded
    markdown = (study_dir / "report.md").read_text()
    assert markdown.index("## Verdict") < markdown.index("## Arms") < markdown.index("## Paired comparisons")
    assert pair["verdict"] in markdown
    plots = sorted(p.name for p in (study_dir / "plots").iterdir())
    assert plots == ["confusion.png", "learning_curves.png", "per_class_f1.png"]  # no gate: no alpha plot
    assert all((study_dir / "plots" / p).read_bytes().startswith(PNG_MAGIC) for p in plots)
    page = (study_dir / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert not re.search(r"(src|href)=\"(?!data:)", page) and "http" not in page and "url(" not in page
    assert result.report_html == study_dir / "report.html"


def _interrupt(monkeypatch, arm, seed, epoch):
    """Make the training pass of ``epoch`` (1-based) of (arm, seed) raise KeyboardInterrupt."""
    original = Trainer._pass

    def interrupted(self, split, training):
        if training and self.arm == arm and self.config.run.seed == seed and self.epoch + 1 == epoch:
            raise KeyboardInterrupt
        return original(self, split, training)

    monkeypatch.setattr(Trainer, "_pass", interrupted)


def _numbers(study_dir):
    """Everything in study.json that does not depend on timing or paths."""
    study = json.loads((study_dir / "study.json").read_text())
    arms = {
        name: {key: entry["per_seed"][key] for key in ("accuracy", "f1", "balanced_accuracy", "per_class_f1", "confusion", "best_epoch")}
        | {"summary": entry["summary"]}
        for name, entry in study["arms"].items()
    }
    return arms, study["comparisons"]


def test_interrupted_study_resumes_to_identical_numbers(tiny_config, tmp_path, monkeypatch):
    straight = run_study(tiny_config("run.name=straight"), seeds=3, arms=["hybrid", "twin"], report=False)
    with monkeypatch.context() as patch:
        _interrupt(patch, "twin", 1, 2)
        with pytest.raises(KeyboardInterrupt):
            run_study(tiny_config(), seeds=3, arms=["hybrid", "twin"], report=False)
    study_dir = tmp_path / "runs" / "tiny-study"
    assert json.loads((study_dir / "runs/hybrid/seed1/summary.json").read_text())["status"] == "finished"
    assert load_checkpoint(study_dir / "runs/twin/seed1" / CHECKPOINT_NAME)["epoch"] == 1
    assert not (study_dir / "runs/hybrid/seed2").exists() and not (study_dir / "study.json").exists()
    finished = (study_dir / "runs/hybrid/seed0/model.pt").stat().st_mtime_ns
    resumed = run_study(tiny_config("run.resume=true"), seeds=3, arms=["hybrid", "twin"], report=False)
    assert resumed.study_dir == study_dir
    assert (study_dir / "runs/hybrid/seed0/model.pt").stat().st_mtime_ns == finished  # kept, not retrained
    assert _numbers(study_dir) == _numbers(straight.study_dir)


def test_resuming_with_another_config_is_refused(tiny_config):
    run_study(tiny_config("epochs=1"), seeds=1, arms=["hybrid"], report=False)
    with pytest.raises(Exception, match="optim.lr"):
        run_study(tiny_config("epochs=1", "optim.lr=0.5", "run.resume=true"), seeds=1, arms=["hybrid"])


def _record(arm, seed, f1, alpha):
    history = [
        {"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "train_f1": f1 * e / 3, "val_f1": f1 * e / 4,
         "alpha": alpha * e / 3}
        for e in (1, 2, 3)
    ]
    return RunRecord(
        arm, seed, "model", None, {"accuracy": f1, "f1": f1, "balanced_accuracy": f1}, [f1, 1 - f1], ["a", "b"],
        [[3, 1], [0, 4]], history, 3, 100, 4, 0.5, 1000.0, "native",
    )


def test_report_of_a_two_phase_study_plots_the_gate(tiny_config, tmp_path):
    config = tiny_config()
    arms = {
        "hybrid": ArmResult("hybrid", "model", [_record("hybrid", s, 0.8 + 0.01 * s, 0.5) for s in range(3)]),
        "frozen": ArmResult("frozen", "model", [_record("frozen", s, 0.7 + 0.02 * s, 0.4) for s in range(3)]),
    }
    from hqnn.train.stats import compare_paired

    comparisons = {"frozen": {m: compare_paired(arms["hybrid"].values(m), arms["frozen"].values(m), "hybrid", "frozen", m)
                              for m in ("accuracy", "f1", "balanced_accuracy")}}
    study = StudyResult(tmp_path, config, [0, 1, 2], arms, comparisons)
    md_path, html_path = write_report(study)
    assert (tmp_path / "plots" / "alpha.png").read_bytes().startswith(PNG_MAGIC)
    assert "plots/alpha.png" in md_path.read_text() and html_path.read_text().count("data:image/png;base64,") == 4
    assert "hybrid better (significant at 0.05)" in md_path.read_text()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--arms", "hybrid,quantum"], "unknown arm(s) 'quantum'; valid arms: hybrid, twin, no_entanglement, frozen"),
        (["--seeds", "0"], "a study needs at least 1 seed"),
        (["--arms", "twin,frozen"], "its arms must include hybrid"),
        (["--arms", "hybrid,hybrid"], "each arm may be named once"),
        (["model.name=cnn_qnn_classical"], "model 'cnn_qnn_classical' has no quantum circuit layer, so the arm(s) hybrid, no_entanglement do not apply"),
        (["model.name=cnn_qnn_classical", "--arms", "hybrid,frozen"], "the arm(s) hybrid, frozen do not apply"),
        (["model.twin=cnn_blog_twin"], "the twin arm does not apply"),
        (["--sed", "3"], "unknown option(s) --sed; options of hqnn compare: --seeds, --arms, --out"),
    ],
)
def test_compare_refuses_bad_inputs_in_one_line(args, message, tmp_path, capsys):
    base = ["compare", "digits_cnn_qnn", "data.limit=48", f"run.out_dir={tmp_path}", "run.progress=false"]
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hqnn compare: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "digits_cnn_qnn-study").exists()  # refused before anything was written


def test_compare_options_may_come_anywhere(tmp_path, capsys):
    for argv in (
        ["compare", "--seeds", "0", "digits_cnn_qnn", f"run.out_dir={tmp_path}"],
        ["compare", "digits_cnn_qnn", "--seeds", "0", f"run.out_dir={tmp_path}"],
        ["compare", "digits_cnn_qnn", f"run.out_dir={tmp_path}", "--seeds", "0"],
    ):
        assert main(argv) == 2
        assert "a study needs at least 1 seed (5 by default, 3 or more for a test); got 0" in capsys.readouterr().err


def test_compare_prints_the_verdict_table_and_report_path(tmp_path, capsys):
    args = ["compare", "digits_cnn_qnn", "epochs=1", "data.limit=32", "data.image_size=12", "batch_size=16",
            f"run.out_dir={tmp_path}", "run.progress=false", "--seeds", "2", "--arms", "hybrid,no_entanglement"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "no_entanglement" in out and "macro-F1" in out
    assert "hybrid − no_entanglement macro-F1:" in out and "too few seeds for a test (at least 3 needed)" in out
    assert out.rstrip().endswith(f"report: {tmp_path / 'digits_cnn_qnn-study' / 'report.html'}")
