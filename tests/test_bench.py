"""Tests for mstoolkit.bench: baselines, callable systems, the cached style classifier, the table."""
from __future__ import annotations

import pytest

from mstoolkit import metrics
from mstoolkit.bench import (STYLE_METRICS, format_style_table, format_table, run_bench, sample_style_classifier,
                             style_classifier, summarize, transfer_system)
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


def test_rule_baseline_renders_the_content_in_the_target_style(bench):
    """"rule" = the target style's renderer applied to the content: exact where the content still has
    every voice of the window (source straight), short of the oracle where an accompaniment style has
    replaced the inner voices (they cannot be recovered from the content)."""
    from mstoolkit.styles import render_style

    seen = []

    def rendered(content, reference, reference_mel, style_b):
        seen.append(style_b)
        return render_style(content, style_b)

    triplets = bench.triplets["test"]
    assert run_bench("rule", bench=bench, progress=False)["note_f1"] == pytest.approx(
        run_bench(rendered, bench=bench, progress=False)["note_f1"])
    assert seen == [t.style_b for t in triplets]
    assert any(t.style_a == "straight" for t in triplets)
    for t in triplets:
        score = metrics.note_prf(render_style(bench.content(t), t.style_b), bench.target(t)).f1
        if t.style_a == "straight":
            assert score == pytest.approx(1.0), t
    rule = run_bench("rule", bench=bench, progress=False)
    assert rule["note_f1"] < 1.0 and rule["style_accuracy"] >= 0.5


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


@pytest.mark.parametrize("content_style", [None, "straight"])
def test_a_model_reads_the_triplet_content_as_rendered_unless_asked(bench, monkeypatch, content_style):
    """StyleBench content is already a rendering in the source style (what training showed the model, and
    what the baselines read): the model system passes it as given; "straight" re-renders it as ``transfer``
    does to a raw file, for measuring that path."""
    import mstoolkit.generate

    calls = []

    def spy(model, tokenizer, content, reference, **options):
        calls.append((content, options["content_style"]))
        return content

    monkeypatch.setattr(mstoolkit.generate, "transfer", spy)
    options = {} if content_style is None else {"content_style": content_style}
    run_bench(transfer_system(None, None, **options), bench=bench, limit=3, progress=False)
    triplets = bench.triplets["test"][:3]
    assert [content for content, _ in calls] == [bench.content(t) for t in triplets]
    assert {style for _, style in calls} == {content_style}


def test_style_classifier_is_cached_with_the_build(bench, monkeypatch):
    first, accuracy = style_classifier(bench, progress=False)
    monkeypatch.setattr(metrics, "train_style_classifier", lambda *a, **k: pytest.fail("trained again"))
    again, accuracy_again = style_classifier(bench, progress=False)
    assert again.classes == first.classes == sorted(CONFIG.styles) and accuracy_again == accuracy
    assert (again.coef == first.coef).all()


def test_a_held_out_collection_is_judged_by_the_classifier_of_the_build_it_is_held_out_from(bench, monkeypatch,
                                                                                            tmp_path):
    from mstoolkit import bench as bench_module
    from mstoolkit import data

    held_config = StyleBenchConfig(**{**CONFIG.to_dict(), "corpus": "tiny-held-out", "split_fractions": (0, 0, 1)})
    held_out = build_stylebench(held_config, tmp_path, pieces=[make_piece(f"tune{i}", 20 + i) for i in range(3)],
                                progress=False)
    assert not held_out.window_ids("train")
    with pytest.raises(ValueError, match="no train split to train the style classifier on"):
        run_bench("oracle", bench=held_out, progress=False)
    donors = []
    monkeypatch.setitem(data.HELD_OUT_FROM, "tiny-held-out", "tiny")
    monkeypatch.setattr(bench_module, "build_stylebench", lambda config, *a, **k: donors.append(config) or bench)
    oracle = run_bench("oracle", bench=held_out, progress=False)
    assert donors[0].corpus == "tiny" and donors[0].split_fractions == StyleBenchConfig().split_fractions
    assert oracle["note_f1"] == 1.0 and oracle["style_accuracy"] >= 0.9
    assert oracle["classifier_test_accuracy"] == pytest.approx(
        style_classifier(bench, progress=False)[0].accuracy(
            [(held_out.render(w, s), s) for w in held_out.window_ids("test") for s in held_out.styles]))


def test_format_table_puts_systems_side_by_side(baselines):
    table = format_table(baselines)
    lines = table.splitlines()
    assert lines[0] == "| measure | identity | oracle |" and lines[1] == "| --- | ---: | ---: |"
    assert lines[2].startswith("| style_accuracy |") and "| note_f1 | " in table
    assert "| n_triplets | 12 | 12 |" in table
    assert format_table({"a": {"x": float("nan")}}).splitlines()[-1] == "| x | - |"


# ------------------------------------------------------------------------------ error breakdown and styles
KINDS = ("exact", "octave", "wrong_pitch", "timing", "other")


def test_error_breakdown_is_summed_over_triplets_then_divided(bench, baselines):
    identity, oracle = baselines["identity"], baselines["oracle"]
    triplets = bench.triplets["test"]
    totals = dict.fromkeys(("n_output", *KINDS, "n_target", "missed"), 0)
    for t in triplets:
        for key, value in metrics.error_breakdown(bench.content(t), bench.target(t)).items():
            totals[key] += value
    assert identity["notes_output"] == totals["n_output"] and identity["notes_target"] == totals["n_target"]
    for kind in KINDS:
        assert identity[f"share_{kind}"] == totals[kind] / totals["n_output"], kind
    assert identity["share_missed"] == totals["missed"] / totals["n_target"]
    assert sum(identity[f"share_{k}"] for k in KINDS) == pytest.approx(1.0)
    assert 0 < identity["share_exact"] < 1 and identity["share_wrong_pitch"] > 0
    assert [oracle[f"share_{k}"] for k in KINDS] == [1.0, 0.0, 0.0, 0.0, 0.0] and oracle["share_missed"] == 0.0
    assert "| share_wrong_pitch | " in format_table(baselines)


def test_summarize_weighs_every_output_note_alike():
    def row(output, exact, wrong_pitch, target):
        return {"note_f1": exact / output, "notes_output": output, "notes_exact": exact, "notes_octave": 0,
                "notes_wrong_pitch": wrong_pitch, "notes_timing": 0, "notes_other": 0, "notes_target": target,
                "notes_missed": target - exact}

    results = summarize([row(1, 1, 0, 1), row(3, 0, 3, 4)])
    assert results["note_f1"] == 0.5  # measures: the mean over triplets
    assert results["share_exact"] == 0.25 and results["share_wrong_pitch"] == 0.75  # shares: of all 4 notes
    assert results["share_missed"] == 0.8 and results["notes_output"] == 4 and results["n_triplets"] == 2
    assert "notes_exact" not in results


def test_by_style_groups_triplets_by_target_and_source_style(bench):
    plain = run_bench("identity", bench=bench, progress=False)
    results = run_bench("identity", bench=bench, progress=False, by_style=True)
    assert {k: v for k, v in results.items() if not k.startswith("by_")} == plain  # the same overall scores
    triplets = bench.triplets["test"]
    for key, field in (("by_target_style", "style_b"), ("by_source_style", "style_a")):
        groups = results[key]
        assert list(groups) == [s for s in CONFIG.styles if any(getattr(t, field) == s for t in triplets)]
        assert sum(g["n_triplets"] for g in groups.values()) == 12
        for style, scores in groups.items():
            assert list(scores) == list(STYLE_METRICS)
            mine = [t for t in triplets if getattr(t, field) == style]
            assert scores["n_triplets"] == len(mine)
            assert scores["note_f1"] == pytest.approx(
                sum(metrics.note_prf(bench.content(t), bench.target(t)).f1 for t in mine) / len(mine))
            counts = [metrics.error_breakdown(bench.content(t), bench.target(t)) for t in mine]
            assert scores["share_wrong_pitch"] == sum(c["wrong_pitch"] for c in counts) / sum(
                c["n_output"] for c in counts)
            assert scores["content_similarity"] == 1.0 and scores["style_accuracy"] <= 0.5
        # the overall note F1 is the triplet-weighted mean of the groups'
        assert sum(g["note_f1"] * g["n_triplets"] for g in groups.values()) / 12 == pytest.approx(plain["note_f1"])
    # this build's 12 test triplets (seeded): their target and source styles
    assert {s: g["n_triplets"] for s, g in results["by_target_style"].items()} == {
        "straight": 5, "swing": 2, "waltz": 3, "alberti": 2}
    assert {s: g["n_triplets"] for s, g in results["by_source_style"].items()} == {
        "straight": 1, "swing": 3, "staccato": 4, "waltz": 3, "alberti": 1}


def test_format_style_table_has_one_row_per_style():
    groups = {"swing": {"n_triplets": 2, "note_f1": 0.5, "share_exact": 0.25},
              "waltz": {"n_triplets": 1, "note_f1": 1.0, "share_exact": float("nan")}}
    table = format_style_table(groups, by="source style", overall={"n_triplets": 3, "note_f1": 2 / 3,
                                                                   "share_exact": 0.25, "polyphony": 3.0})
    assert table.splitlines() == [
        "| source style | n_triplets | note_f1 | share_exact |",
        "| --- | ---: | ---: | ---: |",
        "| swing | 2 | 0.500 | 0.250 |",
        "| waltz | 1 | 1.000 | - |",
        "| all | 3 | 0.667 | 0.250 |",
    ]
    assert format_table({"a": {"note_f1": 1.0, "by_target_style": groups}}).splitlines()[2:] == ["| note_f1 | 1.000 |"]


def test_the_sample_classifier_tells_the_styles_of_the_shipped_samples_apart():
    """The offline classifier the Transfer Studio uses (no corpus build): trained once per process."""
    pytest.importorskip("sklearn")
    from mstoolkit.data import style_reference
    from mstoolkit.styles import list_styles

    classifier = sample_style_classifier()
    assert classifier is sample_style_classifier() and sorted(classifier.classes) == sorted(list_styles())
    styles = ("straight", "swing", "waltz", "alberti")
    assert classifier.accuracy([(style_reference(s, avoid="bwv66.6"), s) for s in styles]) >= 0.75
