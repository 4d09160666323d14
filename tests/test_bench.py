"""Tests for mstoolkit.bench: baselines, callable systems, the cached style classifier, the table."""
from __future__ import annotations

import pytest

from mstoolkit import metrics
from mstoolkit.bench import format_table, run_bench, style_classifier
from mstoolkit.data import StyleBenchConfig, build_stylebench
from mstoolkit.piece import Note, Piece, TempoChange, TimeSignature
from pieces import make_piece




PIECES = [make_piece(f"piece{i:02d}", i) for i in range(8)]  # seed 0: 3 train / 3 val / 2 test pieces
CONFIG = StyleBenchConfig(corpus="tiny", styles=("straight", "swing", "staccato", "waltz", "alberti"),
                          window_bars=2, split_fractions=(0.5, 0.25, 0.25), eval_triplets_per_window=3,
                          max_eval_triplets=None)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return build_stylebench(CONFIG, tmp_path_factory.mktemp("cache"), pieces=PIECES, progress=False)


@pytest.fixture(scope="module")
def baselines(bench):
    return {name: run_bench(name, bench=bench, progress=False) for name in ("identity", "oracle")}


def test_oracle_tops_the_scales_and_identity_scores_lower_on_style(baselines):
    identity, oracle = baselines["identity"], baselines["oracle"]
    assert oracle["n_triplets"] == identity["n_triplets"] == 4 * 3
    assert oracle["note_f1"] == oracle["dtw_similarity"] == 1.0
    assert oracle["style_accuracy"] >= 0.9 and identity["style_accuracy"] <= 0.2
    assert oracle["classifier_test_accuracy"] >= 0.9
    assert identity["note_f1"] < oracle["note_f1"] and identity["dtw_similarity"] < 1.0
    assert identity["style_profile_similarity"] < oracle["style_profile_similarity"]
    assert identity["content_similarity"] == 1.0
    assert oracle["swing_ratio_error"] == 0.0 and identity["swing_ratio_error"] > 0.3


def test_a_callable_system_gets_the_triplet_and_is_scored_like_a_baseline(bench, baselines):
    seen = []

    def copy_content(content, reference, reference_mel, style_b):
        seen.append((reference_mel.shape, style_b))
        return content

    assert run_bench(copy_content, bench=bench, limit=2, progress=False)["note_f1"] == pytest.approx(
        run_bench("identity", bench=bench, limit=2, progress=False)["note_f1"])
    assert [s for _, s in seen] == [t.style_b for t in bench.triplets["test"][:2]]
    assert seen[0][0][0] == CONFIG.n_mels
    with pytest.raises(ValueError, match="expected a Piece"):
        run_bench(lambda *args: None, bench=bench, limit=1, progress=False)
    with pytest.raises(ValueError, match="identity"):
        run_bench("copy", bench=bench)


def test_style_classifier_is_cached_with_the_build(bench, monkeypatch):
    first, accuracy = style_classifier(bench, progress=False)
    monkeypatch.setattr(metrics, "train_style_classifier", lambda *a, **k: pytest.fail("trained again"))
    again, accuracy_again = style_classifier(bench, progress=False)
    assert again.classes == first.classes == sorted(CONFIG.styles) and accuracy_again == accuracy
    assert (again.coef == first.coef).all()


def test_format_table_puts_systems_side_by_side(baselines):
    table = format_table(baselines)
    lines = table.splitlines()
    assert lines[0] == "| measure | identity | oracle |" and lines[1] == "| --- | ---: | ---: |"
    assert lines[2].startswith("| style_accuracy |") and "| note_f1 | " in table
    assert "| n_triplets | 12 | 12 |" in table
    assert format_table({"a": {"x": float("nan")}}).splitlines()[-1] == "| x | - |"
