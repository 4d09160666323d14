"""Drive AttentionExplorer and GramExplorer without a browser: move the selectors, check the figures' data."""
import datetime
import importlib.util

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")

from mstoolkit import viz  # noqa: E402
from mstoolkit.checkpoint import debug_model  # noqa: E402
from mstoolkit.generate import reference_mel  # noqa: E402
from mstoolkit.losses import gram_matrix, style_loss  # noqa: E402
from mstoolkit.piece import load_piece, sample_paths  # noqa: E402
from mstoolkit.styles import render_style  # noqa: E402
from mstoolkit.tokenizer import RemiTokenizer  # noqa: E402
from mstoolkit.widgets import AttentionExplorer, GramExplorer  # noqa: E402
from mstoolkit.widgets.attention_explorer import token_bars  # noqa: E402

TOK = RemiTokenizer()


def _upload(content: bytes, name: str) -> tuple:
    return ({"name": name, "type": "application/octet-stream", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime(2026, 1, 1)},)


def _z(fig) -> np.ndarray:
    return np.asarray(fig.data[0].z, dtype=float)


def _arcs(fig) -> list:
    return [t for t in fig.data if t.showlegend is False]


@pytest.fixture(scope="module")
def model():
    # Two layers per stack so the layer selector has a choice; the default tokenizer's vocabulary.
    return debug_model(vocab_size=TOK.vocab_size, n_enc_layers=2, n_dec_layers=2)


@pytest.fixture(scope="module")
def explorer(model):
    return AttentionExplorer(model=model, sample="bwv66.6", style="waltz", bars=2, window=(1, 2))


@pytest.fixture
def fresh(explorer):
    """The shared explorer reset to cross attention, layer 1, mean of heads, bars 1-2."""
    explorer.kind.value, explorer.layer.value, explorer.head.value = "cross", 0, -1
    explorer.window.value = (1, 2)
    return explorer


# ----------------------------------------------------------------------------- tokens <-> notes
def test_note_groups_name_each_note(hand_piece):
    ids = TOK.encode(hand_piece)
    piece, groups = TOK.note_groups(ids)
    assert piece.notes == TOK.decode(ids).notes and len(groups) == len(piece.notes)
    names = TOK.tokens(ids)
    for note, group in zip(piece.notes, groups):
        program, pitch, velocity, duration = (names[i] for i in group)
        assert program == ("Program_drums" if note.is_drum else f"Program_{note.program}")
        assert (pitch, velocity, duration) == (f"Pitch_{note.pitch}", f"Velocity_{note.velocity}",
                                               f"Duration_{note.duration}")
    bars = token_bars(TOK, ids)
    assert np.all(np.diff(bars) >= 0) and bars[-1] == len([n for n in names if n == "Bar"]) - 1


# ----------------------------------------------------------------------------- AttentionExplorer
def test_heatmap_is_the_models_attention(fresh, model):
    """The heatmap shows the same numbers as an independent forward pass with return_attn=True."""
    e = fresh
    e.head.value = 2 - 1  # head 2
    ids = torch.tensor([TOK.encode(render_style(load_piece(sample_paths()["bwv66.6"]).slice_bars(0, 2), "waltz"))])
    assert ids[0].tolist()[:-1] == e.target.ids
    mel = torch.as_tensor(reference_mel(render_style(load_piece(sample_paths()["bwv66.6"]).slice_bars(0, 2), "waltz")))
    mel = mel[None]  # (1, n_mels, frames): the reference is the content in the style
    with torch.no_grad():
        _, loss, maps = model(torch.tensor([e.content.ids]), mel, ids[:, :-1], ids[:, 1:], return_attn=True)
    (q0, q1), (k0, k1) = e.query_range, e.key_range
    expected = maps.cross[0][0, 1, q0:q1, k0:k1].numpy()
    assert np.allclose(_z(e.heatmap), expected, atol=1e-6)
    assert abs(e.loss - float(loss)) < 1e-5
    assert list(e.heatmap.data[0].y[:2]) == [f"{q0}:BOS", f"{q0 + 1}:Bar"]
    assert list(e.heatmap.data[0].x) == [f"{k0 + i}:{name}" for i, name in enumerate(e.content.names[k0:k1])]


@pytest.mark.parametrize("control, value", [("kind", "encoder self"), ("kind", "decoder self"), ("layer", 1),
                                            ("head", 0), ("window", (2, 2))])
def test_each_selector_changes_the_heatmap(fresh, control, value):
    before = _z(fresh.heatmap)
    getattr(fresh, control).value = value
    after = _z(fresh.heatmap)
    assert after.shape != before.shape or not np.allclose(after, before)
    assert np.array_equal(after, fresh.window_weights)
    (q0, q1), (k0, k1) = fresh.query_range, fresh.key_range
    assert np.allclose(after, fresh.selected_map()[q0:q1, k0:k1])


def test_mean_of_heads_and_causal_decoder(fresh):
    fresh.kind.value = "decoder self"
    heads = fresh.maps["decoder self"][0]  # (H, T, T)
    (q0, q1), (k0, k1) = fresh.query_range, fresh.key_range
    assert np.allclose(_z(fresh.heatmap), heads.mean(axis=0)[q0:q1, k0:k1])
    assert q0 == k0 == 0 and np.allclose(np.triu(_z(fresh.heatmap), k=1), 0)  # no token sees the future
    assert np.allclose(_z(fresh.heatmap).sum(axis=1), 1, atol=1e-5)  # whole rows: softmax sums to 1


def test_window_keeps_the_chosen_bars_and_layers_follow_the_kind(fresh):
    fresh.window.value = (2, 2)
    (q0, q1), (k0, k1) = fresh.query_range, fresh.key_range
    assert set(fresh.target.bars[q0:q1]) == {1} and set(fresh.content.bars[k0:k1]) == {1}
    assert fresh.target.names[q0] == "Bar" and fresh.content.names[k0] == "Bar"
    assert len(fresh.layer.options) == 2 and fresh.window.max == 2


def test_note_arcs_follow_note_and_top_k(fresh):
    queries = fresh.target
    assert fresh.note.value is not None and len(fresh.note.options) == len(queries.piece.notes)
    expected = viz.note_attention(fresh.selected_map(), queries.groups, fresh.content.groups)
    assert np.allclose(fresh.note_weights, expected)
    fresh.top_k.value = 3
    assert len(_arcs(fresh.arcs)) == 3
    assert any(t.name and t.name.startswith("keys:") for t in fresh.arcs.data)  # cross: content notes drawn too
    before = [list(t.x) for t in _arcs(fresh.arcs)]
    fresh.note.value = fresh.note.options[-1][1]
    assert [list(t.x) for t in _arcs(fresh.arcs)] != before
    star = [t for t in fresh.arcs.data if t.name == "query note"][0]
    note = queries.piece.notes[fresh.note.value]
    assert star.y[0] == note.pitch
    fresh.kind.value = "encoder self"  # self-attention: no second piece
    assert not any(t.name and t.name.startswith("keys:") for t in fresh.arcs.data)
    assert fresh.note_weights.shape == (len(fresh.content.piece.notes),) * 2


def test_click_on_a_token_selects_its_note(fresh):
    queries = fresh.target
    note = len(queries.groups) // 2
    fresh.window.value = (1, 2)
    fresh.select_token(queries.groups[note][1])  # its Pitch token
    assert fresh.note.value == note
    fresh.select_token(1)  # the first Bar: no note
    assert fresh.note.value == note and "belongs to no note" in fresh.view_status.value


def test_export_html_and_images(fresh, tmp_path):
    paths = fresh.export("html", tmp_path / "cross")
    assert [p.name for p in paths] == ["cross_heatmap.html", "cross_arcs.html"]
    text = paths[0].read_text()
    assert "cross attention" in text and "plotly" in text and "<script src=\"http" not in text  # offline
    fresh.export_path.value = str(tmp_path / "img")
    fresh._on_export("png")
    if importlib.util.find_spec("kaleido") is None:
        assert "needs the kaleido package" in fresh.export_status.value
    else:
        assert (tmp_path / "img_heatmap.png").stat().st_size > 0


def test_bad_uploads_show_messages_and_keep_the_maps(fresh):
    before = _z(fresh.heatmap)
    fresh.upload.value = _upload(b"not a midi file", "broken.mid")
    assert "Could not read the upload" in fresh.status.value and "broken.mid" in fresh.status.value
    fresh.reference_upload.value = _upload(b"\x00\x01 noise", "noise.wav")
    assert "Could not read the reference upload" in fresh.status.value and "noise.wav" in fresh.status.value
    fresh.reference_upload.value = _upload(b"abc", "notes.txt")
    assert "expected a MIDI file" in fresh.status.value
    assert np.array_equal(_z(fresh.heatmap), before)


def test_reference_upload_and_generated_target(model):
    e = AttentionExplorer(model=model, sample="bwv438", style="swing", bars=1)
    rendered_target, rendered_loss = list(e.target.ids), e.loss
    e.reference.value = "uploaded"  # nothing uploaded yet
    assert "no reference uploaded" in e.status.value and not e.maps
    reference = render_style(load_piece(sample_paths()["bwv66.6"]).slice_bars(0, 1), "stride").to_midi_bytes()
    e.reference_upload.value = _upload(reference, "stride_ref.mid")
    assert "stride_ref.mid" in e.status.value and e.maps and e.loss != rendered_loss
    e.target_mode.value = "generated by the model"
    assert "generated target" in e.status.value and e.target.ids != rendered_target
    assert _z(e.heatmap).size > 0


def test_a_copy_model_adds_its_pointer_as_a_kind_and_plain_models_do_not(model):
    from mstoolkit.model import ModelConfig

    copy_model = debug_model(vocab_size=TOK.vocab_size, copy=True, **ModelConfig.beat_grid_from(TOK))
    e = AttentionExplorer(model=copy_model, sample="bwv66.6", style="waltz", bars=1)
    assert list(e.kind.options) == ["cross", "encoder self", "decoder self", "copy"]
    assert "Probability of copying a content pitch" in e.status.value
    e.kind.value = "copy"
    pointer = e.maps["copy"][0][0]  # (T, S): one head
    is_pitch = np.array([TOK.token_types[t] == "Pitch" for t in e.content.ids])
    assert np.allclose(pointer.sum(-1), 1, atol=1e-5) and pointer[:, ~is_pitch].max() == 0
    assert _z(e.heatmap).size > 0 and "copy" in e.heatmap.layout.title.text
    e.set_model(model)  # no copy head: no copy view
    assert "copy" not in e.kind.options and e.kind.value == "cross"


def test_a_pitch_hint_model_shows_the_bias_before_each_target_note_and_plain_models_hide_it(model):
    from mstoolkit.model import ModelConfig

    hint_model = debug_model(vocab_size=TOK.vocab_size, pitch_hints=True, **ModelConfig.beat_grid_from(TOK))
    with torch.no_grad():
        torch.nn.init.normal_(hint_model.pitch_hints.weight.weight)  # untrained hints are ~0
    e = AttentionExplorer(model=hint_model, sample="bwv66.6", style="waltz", bars=1)
    notes = e.target.piece.notes
    assert e.hint_bias.shape == (len(notes), 128) and (np.abs(e.hint_bias).sum(1) > 0).all()
    written = [trace for trace in e.hints.data if trace.name == "note written"][0]
    assert list(written.y) == [n.pitch for n in notes]  # one column per target note, its pitch marked
    assert e.hints_box.layout.display != "none" and "pitch hints" in e.hints.layout.title.text
    e.set_model(model)  # no hints: the figure is hidden
    assert e.hint_bias.size == 0 and e.hints_box.layout.display == "none"


def test_no_model_or_wrong_model_shows_a_message(model):
    e = AttentionExplorer(model=None, sample="bwv438", bars=1)
    assert "No model loaded" in e.status.value
    assert not e.heatmap.data and not e.arcs.data
    e.sample.value = "bwv66.6"  # still no model: a message, no traceback
    assert "model" in e.status.value
    e.set_model(debug_model())  # 512 tokens: not the default tokenizer's vocabulary
    assert "tokenizer has 777 tokens" in e.status.value and e.model is None
    e.checkpoint.value = "no_such_checkpoint"
    e.load_button.click()
    assert "Could not load model &#x27;no_such_checkpoint&#x27;" in e.status.value
    e.set_model(model)
    assert e.model is model and _z(e.heatmap).size > 0 and "color:#333" in e.status.value


def test_default_is_the_demo_checkpoint():
    e = AttentionExplorer(sample="bwv438", bars=1)
    assert e.model is not None and e.tokenizer.vocab_size == e.model.config.vocab_size
    assert e.loss is not None and np.isfinite(e.loss) and _z(e.heatmap).size > 0


# ----------------------------------------------------------------------------- GramExplorer
@pytest.fixture(scope="module")
def gram(model):
    return GramExplorer(model=model, sample="bwv438", styles=("straight", "waltz"), bars=1, per_style=2)


def test_gram_of_two_styles_differs(gram):
    gram.styles.value, gram.layer.value = ("straight", "waltz"), 2
    a, b = gram.grams["straight"], gram.grams["waltz"]
    assert a.shape == (16, 16) and not np.allclose(a, b)
    assert gram.loss_matrix[0, 1] == pytest.approx(np.mean((a.astype(float) - b) ** 2)) and gram.loss_matrix[0, 1] > 0
    assert len(gram.gram_fig.data) == 3 and np.allclose(_z(gram.gram_fig), a)
    assert np.allclose(np.asarray(gram.gram_fig.data[2].z, dtype=float), a - b)
    assert "Style loss between straight and waltz" in gram.status.value


def test_gram_layer_and_many_references(gram):
    gram.layer.value = 0
    assert gram.grams["straight"].shape == (8, 8)  # debug encoder: 8, 16, 16 channels
    gram.styles.value = ("straight", "swing", "alberti")
    assert gram.names == ["straight", "swing", "alberti"] and gram.loss_matrix.shape == (3, 3)
    assert np.allclose(gram.loss_matrix, gram.loss_matrix.T) and np.allclose(np.diag(gram.loss_matrix), 0)
    assert len(gram.gram_fig.data) == 3 and "most different" in gram.status.value
    gram.styles.value = ()
    assert "Pick at least two references" in gram.status.value and not gram.gram_fig.data


def test_identical_references_give_zero_loss(model):
    g = GramExplorer(model=model, sample="bwv438", styles=("swing",), bars=1)
    swing = render_style(load_piece(sample_paths()["bwv438"]).slice_bars(0, 1), "swing")
    g.upload.value = _upload(swing.to_midi_bytes(), "my_swing.mid")
    assert g.names == ["swing", "upload: my_swing.mid"]
    assert g.loss_matrix[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(np.asarray(g.gram_fig.data[2].z, dtype=float), 0)


def test_gram_bad_upload_and_no_model(model):
    g = GramExplorer(model=model, sample="bwv438", styles=("swing", "waltz"), bars=1)
    g.upload.value = _upload(b"garbage", "song.mid")
    assert "Could not read the upload" in g.status.value and "song.mid" in g.status.value
    assert g.names == ["swing", "waltz"]  # the good references stay
    none = GramExplorer(model=None, bars=1)
    assert "No model loaded" in none.status.value and not none.gram_fig.data
    none.compute_map()
    assert "No model loaded" in none.map_status.value
    none.set_model(model)
    assert none.grams and "color:#333" in none.status.value


def test_style_map_is_coloured_by_style(gram):
    gram.styles.value = ("swing", "waltz")
    gram.embedding.value = "style vector"
    gram.compute_map()
    assert gram.embeddings.shape == (4, gram.model.config.d_style)
    assert gram.labels == ["swing", "swing", "waltz", "waltz"]
    assert [t.name for t in gram.map_fig.data] == ["swing", "waltz"]
    assert "nearest-neighbour style agreement" in gram.map_status.value
    gram.embedding.value = "Gram matrix"
    gram.layer.value = 0
    gram.compute_map()
    assert gram.embeddings.shape == (4, 8 * 9 // 2)


# ----------------------------------------------------------------------------- the viz functions they use
def test_note_attention_sums_keys_and_averages_queries():
    weights = np.array([[0.1, 0.2, 0.3, 0.4],
                        [0.5, 0.0, 0.0, 0.5],
                        [0.25, 0.25, 0.25, 0.25]])  # (T_q=3, T_k=4)
    notes = viz.note_attention(weights, [[0, 1], [2]], [[0], [2, 3]])
    assert np.allclose(notes, [[(0.1 + 0.5) / 2, (0.7 + 0.5) / 2], [0.25, 0.5]])
    with pytest.raises(ValueError, match="key_notes"):
        viz.note_attention(weights, [[0]], [[4]])


def test_arcs_to_a_second_piece_and_loss_matrix():
    from mstoolkit.piece import Note, Piece

    query = Piece([Note(0, 12, 60), Note(12, 12, 62)])
    keys = Piece([Note(0, 6, 48), Note(6, 6, 50), Note(12, 12, 52)])
    fig = viz.attention_arcs(query, np.array([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]]), query_note=0, top_k=1,
                             key_piece=keys)
    (arc,) = _arcs(fig)
    assert arc.y[-1] == 50 and fig.data[0].name.startswith("keys:")  # strongest key; keys drawn first (under)
    with pytest.raises(ValueError, match="2 query notes and 3 key notes"):
        viz.attention_arcs(query, np.ones((2, 2)), query_note=0, key_piece=keys)
    fig = viz.style_loss_matrix(np.array([[0.0, 2.0], [2.0, 0.0]]), ["a", "b"])
    assert list(fig.data[0].x) == ["a", "b"] and fig.data[0].text[0][1] == "2"
    with pytest.raises(ValueError, match="losses must be"):
        viz.style_loss_matrix(np.zeros((2, 2)), ["a"])
    heat = viz.attention_heatmap(np.eye(2), ["x", "y"], ["x", "y"], query_start=10, key_start=3)
    assert list(heat.data[0].y) == ["10:x", "11:y"] and list(heat.data[0].x) == ["3:x", "4:y"]


def test_long_windows_are_clipped_with_a_message(fresh, monkeypatch):
    from mstoolkit.widgets import attention_explorer

    monkeypatch.setattr(attention_explorer, "MAX_WINDOW_TOKENS", 20)
    fresh.head.value = 0  # any change redraws
    assert _z(fresh.heatmap).shape == (20, 20) and fresh.query_range[1] - fresh.query_range[0] == 20
    assert "more than 20 tokens" in fresh.view_status.value
    monkeypatch.setattr(attention_explorer, "MAX_WINDOW_TOKENS", 400)
    fresh.head.value = -1
    assert _z(fresh.heatmap).shape[0] > 20 and fresh.view_status.value == ""
