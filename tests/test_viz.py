"""viz: figures carry the data they were given, and wrong shapes give a ValueError naming the argument."""
import numpy as np
import plotly.graph_objects as go
import pytest

from mstoolkit import viz
from mstoolkit.piece import Note, Piece, TimeSignature


@pytest.fixture
def piece():
    notes = [Note(0, 12, 60), Note(12, 12, 64, program=40), Note(24, 24, 67), Note(0, 48, 36, is_drum=True)]
    return Piece(notes, time_signatures=[TimeSignature(0, 3, 4)], name="tiny")


def test_piano_roll_has_one_segment_per_note(piece):
    fig = viz.piano_roll(piece)
    segments = sum(sum(x is None for x in t.x) for t in fig.data)
    assert segments == len(piece)
    assert {t.name for t in fig.data} == {"program 0", "program 40", "drums"}
    ys = [y for t in fig.data for y in t.y if y is not None]
    assert set(ys) == {60, 64, 67, 36}


def test_piano_roll_rejects_non_piece():
    with pytest.raises(ValueError, match="piece must be"):
        viz.piano_roll([1, 2, 3])


def test_pitch_name():
    assert viz.pitch_name(60) == "C4" and viz.pitch_name(69) == "A4"


def test_token_strip_colours_by_type():
    tokens = ["Bar", "Position_0", "Pitch_60", "Velocity_80", "Duration_12"]
    types = ["Bar", "Position", "Pitch", "Velocity", "Duration"]
    fig = viz.token_strip(tokens, types, per_row=4)
    heat = fig.data[0]
    assert np.asarray(heat.z).shape == (2, 4)
    assert heat.hovertext[0][2] == "#2 Pitch_60"
    assert len({v for v in np.asarray(heat.z, dtype=float).ravel() if not np.isnan(v)}) == 5
    with pytest.raises(ValueError, match="same length"):
        viz.token_strip(tokens, types[:-1])


def test_attention_heatmap_labels_and_shape_errors():
    w = np.random.default_rng(0).random((3, 4))
    fig = viz.attention_heatmap(w, ["a", "b", "c"], ["w", "x", "y", "z"])
    assert np.allclose(fig.data[0].z, w)
    assert list(fig.data[0].y) == ["0:a", "1:b", "2:c"]
    with pytest.raises(ValueError, match="weights must be a 2-D"):
        viz.attention_heatmap(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="key_labels"):
        viz.attention_heatmap(w, key_labels=["only one"])


def test_attention_arcs_draw_top_k(piece):
    n = len(piece)
    weights = np.eye(n)[::-1] + 0.1
    fig = viz.attention_arcs(piece, weights, query_note=0, top_k=2)
    arcs = [t for t in fig.data if t.showlegend is False]
    assert len(arcs) == 2
    with pytest.raises(ValueError, match="query_note"):
        viz.attention_arcs(piece, weights, query_note=n)
    with pytest.raises(ValueError, match="note_weights must be"):
        viz.attention_arcs(piece, np.ones((n + 1, n + 1)), query_note=0)


def test_gram_figure_adds_difference_for_two():
    a, b = np.eye(3), np.ones((3, 3))
    fig = viz.gram_figure({"swing": a, "waltz": b})
    assert len(fig.data) == 3
    assert np.allclose(fig.data[2].z, a - b)
    with pytest.raises(ValueError, match="square"):
        viz.gram_figure({"x": np.zeros((2, 3))})


def test_style_embedding_map_separates_clusters():
    rng = np.random.default_rng(0)
    emb = np.r_[rng.normal(0, 0.1, (10, 8)), rng.normal(5, 0.1, (10, 8))]
    fig = viz.style_embedding_map(emb, ["a"] * 10 + ["b"] * 10)
    xa, xb = np.mean(fig.data[0].x), np.mean(fig.data[1].x)
    assert abs(xa - xb) > 5


def test_training_curves_checks_lengths():
    fig = viz.training_curves({"step": [1, 2, 3], "loss": [3.0, 2.0, 1.5]})
    assert isinstance(fig, go.Figure) and list(fig.data[0].y) == [3.0, 2.0, 1.5]
    with pytest.raises(ValueError, match="3 step values"):
        viz.training_curves({"step": [1, 2, 3], "loss": [1.0]})


def test_error_breakdown_figure_stacks_the_shares_of_each_output():
    counts = {"n_output": 4, "exact": 2, "octave": 0, "wrong_pitch": 1, "timing": 1, "other": 0,
              "n_target": 3, "missed": 1}
    empty = dict.fromkeys(counts, 0)
    fig = viz.error_breakdown_figure({"model": counts, "silent": empty}, title="errors")
    assert [t.name for t in fig.data] == ["exact", "octave off", "right onset, wrong pitch",
                                          "right pitch, onset off", "other"]
    assert [list(t.x) for t in fig.data] == [[0.5, 0.0], [0.0, 0.0], [0.25, 0.0], [0.25, 0.0], [0.0, 0.0]]
    assert list(fig.data[0].y) == ["model", "silent"] and list(fig.data[2].customdata) == [1, 0]
    assert fig.layout.barmode == "stack" and fig.layout.title.text == "errors"
    with pytest.raises(ValueError, match="not an error_breakdown result"):
        viz.error_breakdown_figure({"model": {"exact": 1}})
