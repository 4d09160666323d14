"""Model, config, attention paths, style encoder, checkpoints, quantization and light imports."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mstoolkit.model as model_module
from mstoolkit.checkpoint import (CONFIG_NAME, WEIGHTS_NAME, debug_model, load_pretrained, quantize_int8,
                                  save_pretrained, state_size_bytes)
from mstoolkit.model import ModelConfig, MusicStyleTransformer, StyleEncoder


V = 40
N_MELS = 16
ROOT = Path(__file__).resolve().parent.parent


def make_model(**overrides) -> MusicStyleTransformer:
    torch.manual_seed(0)
    cfg = ModelConfig.preset("debug", vocab_size=V, n_mels=N_MELS, **overrides)
    return MusicStyleTransformer(cfg).eval()


def batch(B=2, S=12, T=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    content = torch.randint(3, V, (B, S), generator=g)
    mel = torch.randn(B, N_MELS, 23, generator=g) * 20 - 40
    target = torch.randint(3, V, (B, T + 1), generator=g)
    return content, mel, target[:, :-1], target[:, 1:]


# ------------------------------------------------------------------------------ config
def test_presets_and_sizes():
    assert ModelConfig.preset("base").d_model == 384
    assert ModelConfig.preset("tiny").d_model == 96
    base = MusicStyleTransformer(ModelConfig.preset("base", vocab_size=500))
    assert abs(base.num_parameters() - 30.19e6) / 30.19e6 < 0.02  # the seed's size, measured in its anchor
    with pytest.raises(ValueError, match="unknown preset"):
        ModelConfig.preset("huge")


def test_config_round_trip_and_validation():
    cfg = ModelConfig.preset("tiny", vocab_size=777, conditioning="adaln")
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        ModelConfig.from_dict({**cfg.to_dict(), "n_layers": 3})
    with pytest.raises(ValueError, match="heads"):
        ModelConfig(d_content=30, d_style=10, n_heads=8)
    with pytest.raises(ValueError, match="conditioning"):
        ModelConfig(conditioning="film")
    with pytest.raises(ValueError, match="vocab_size"):
        ModelConfig(vocab_size=0)


# ------------------------------------------------------------------------------ forward
def test_forward_shapes_and_loss():
    model = make_model()
    content, mel, tgt_in, tgt_out = batch()
    logits, loss = model(content, mel, tgt_in, tgt_out)
    assert logits.shape == (2, 10, V)
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1)))
    logits2, no_loss = model(content, mel, tgt_in)
    assert no_loss is None and torch.equal(logits, logits2)


def test_backward_reaches_every_parameter():
    model = make_model().train()
    content, mel, tgt_in, tgt_out = batch()
    model(content, mel, tgt_in, tgt_out)[1].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_attention_maps_match_fast_path():
    model = make_model()
    content, mel, tgt_in, _ = batch()
    content[1, 8:] = 0  # padding
    fast, _ = model(content, mel, tgt_in)
    slow, _, maps = model(content, mel, tgt_in, return_attn=True)
    assert torch.allclose(fast, slow, atol=1e-5)
    H = model.config.n_heads
    assert [m.shape for m in maps.encoder] == [(2, H, 12, 12)] * model.config.n_enc_layers
    assert [m.shape for m in maps.decoder_self] == [(2, H, 10, 10)] * model.config.n_dec_layers
    assert [m.shape for m in maps.cross] == [(2, H, 10, 12)] * model.config.n_dec_layers
    for m in maps.encoder + maps.decoder_self + maps.cross:
        assert torch.allclose(m.sum(-1), torch.ones(()), atol=1e-5)
    assert maps.decoder_self[0].triu(1).abs().max() == 0  # causal
    assert maps.cross[0][1, :, :, 8:].abs().max() == 0  # padded content gets no attention
    assert maps.encoder[0][1, :, :, 8:].abs().max() == 0


def test_attention_maps_cost_nothing_when_off(monkeypatch):
    model = make_model()
    content, mel, tgt_in, _ = batch()
    reference, _ = model(content, mel, tgt_in)
    calls = []
    real = model_module._manual_attention
    monkeypatch.setattr(model_module, "_manual_attention", lambda *a: calls.append(1) or real(*a))
    logits, _ = model(content, mel, tgt_in)
    assert calls == [] and torch.equal(logits, reference)
    model(content, mel, tgt_in, return_attn=True)
    cfg = model.config
    assert len(calls) == cfg.n_enc_layers + 2 * cfg.n_dec_layers


def test_content_padding_is_ignored():
    model = make_model()
    content, mel, tgt_in, _ = batch(B=1)
    padded = torch.cat([content, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    a, _ = model(content, mel, tgt_in)
    b, _ = model(padded, mel, tgt_in)
    assert torch.allclose(a, b, atol=1e-5)


def test_decoder_is_causal_and_style_matters():
    model = make_model()
    content, mel, tgt_in, _ = batch()
    changed = tgt_in.clone()
    changed[:, 6:] = 3
    a, _ = model(content, mel, tgt_in)
    b, _ = model(content, mel, changed)
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-5) and not torch.allclose(a[:, 6:], b[:, 6:])
    c, _ = model(content, mel.flip(-1) + 10, tgt_in)
    assert (a - c).abs().max() > 1e-4


def test_adaln_conditioning_uses_the_style():
    model = make_model(conditioning="adaln")
    content, mel, tgt_in, tgt_out = batch()
    a, _ = model(content, mel, tgt_in)
    b, _ = model(content, mel + 15, tgt_in)
    assert torch.allclose(a, b, atol=1e-6)  # zero-initialised modulation: plain LayerNorm at first
    torch.nn.init.normal_(model.encoder[0].modulation.weight, std=0.5)
    c, _ = model(content, mel + 15, tgt_in)
    assert (a - c).abs().max() > 1e-4


def test_activation_checkpointing_gives_same_loss_and_grads():
    content, mel, tgt_in, tgt_out = batch()
    results = []
    for flag in (False, True):
        model = make_model(activation_checkpointing=flag).train()
        loss = model(content, mel, tgt_in, tgt_out)[1]
        loss.backward()
        results.append((loss.detach(), model.decoder[0].mlp.fc1.weight.grad.clone()))
    assert torch.allclose(results[0][0], results[1][0]) and torch.allclose(results[0][1], results[1][1], atol=1e-6)


def test_decode_step_matches_full_decoder():
    model = make_model()
    content, mel, tgt_in, _ = batch()
    content[0, 9:] = 0
    memory, mask = model.encode(content, model.style_encoder(mel))
    full = model.head(model.decode(tgt_in, memory, mask))  # (B, T, V)
    cache = model.new_cache(2, 64, content.shape[1])
    model.fill_cross(cache, memory, mask)
    for t in range(tgt_in.shape[1]):
        step = model.decode_step(tgt_in[:, t], torch.tensor([t]), cache)
        assert torch.allclose(step, full[:, t], atol=1e-5)


def test_bad_inputs_raise_clear_errors():
    model = make_model()
    content, mel, tgt_in, _ = batch()
    with pytest.raises(ValueError, match="mel spectrogram"):
        model(content, mel[:, :8], tgt_in)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.ones(1, model.config.max_len + 1, dtype=torch.long), mel[:1], tgt_in[:1])
    with pytest.raises(ValueError, match="content_ids"):
        model(content.float(), mel, tgt_in)


# ------------------------------------------------------------------------------ style encoder
@pytest.mark.parametrize("frames", [1, 7, 300])
def test_style_encoder_any_length(frames):
    enc = StyleEncoder(n_mels=N_MELS, d_style=12, channels=(4, 8, 8))
    mel = np.random.default_rng(0).normal(-40, 20, (N_MELS, frames)).astype(np.float32)
    single = enc.embed(mel)
    batched = enc.embed(np.stack([mel, mel]))
    assert single.shape == (12,) and batched.shape == (2, 12)
    assert torch.isfinite(single).all() and torch.allclose(batched[1], single, atol=1e-5)


# ------------------------------------------------------------------------------ checkpoints
def test_save_load_round_trip(tmp_path):
    model = make_model()
    content, mel, tgt_in, _ = batch()
    save_pretrained(model, tmp_path / "ckpt")
    loaded = MusicStyleTransformer.from_pretrained(str(tmp_path / "ckpt"))
    assert loaded.config == model.config and not loaded.training
    assert torch.equal(loaded(content, mel, tgt_in)[0], model(content, mel, tgt_in)[0])
    assert json.loads((tmp_path / "ckpt" / CONFIG_NAME).read_text())["dtype"] == "float32"


def test_fp16_checkpoint_halves_size(tmp_path):
    model = make_model()
    content, mel, tgt_in, _ = batch()
    model.save_pretrained(str(tmp_path / "fp32"))
    model.save_pretrained(str(tmp_path / "fp16"), dtype=torch.float16)
    size32, size16 = ((tmp_path / d / WEIGHTS_NAME).stat().st_size for d in ("fp32", "fp16"))
    assert 0.48 < size16 / size32 < 0.52
    half = load_pretrained(tmp_path / "fp16")
    assert half.target_emb.weight.dtype == torch.float32
    assert (half(content, mel, tgt_in)[0] - model(content, mel, tgt_in)[0]).abs().max() < 1e-2


def _corrupt_cases():
    def truncate(d):
        data = (d / WEIGHTS_NAME).read_bytes()
        (d / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])

    def bad_json(d):
        (d / CONFIG_NAME).write_text("{not json")

    def unknown_field(d):
        meta = json.loads((d / CONFIG_NAME).read_text())
        meta["config"]["n_layers"] = 4
        (d / CONFIG_NAME).write_text(json.dumps(meta))

    def other_shape(d):
        meta = json.loads((d / CONFIG_NAME).read_text())
        meta["config"]["d_content"] = 64
        (d / CONFIG_NAME).write_text(json.dumps(meta))

    def missing_key(d):
        from safetensors.torch import load_file, save_file

        state = load_file(str(d / WEIGHTS_NAME))
        del state["decoder_ln.weight"]
        save_file(state, str(d / WEIGHTS_NAME))

    def no_weights(d):
        (d / WEIGHTS_NAME).unlink()

    def not_safetensors(d):
        (d / WEIGHTS_NAME).write_bytes(b"PK\x03\x04 a zip, e.g. a torch.save pickle")

    return [(truncate, WEIGHTS_NAME, "safetensors"), (bad_json, CONFIG_NAME, "JSON"),
            (unknown_field, CONFIG_NAME, "unknown field"), (other_shape, WEIGHTS_NAME, "shape"),
            (missing_key, WEIGHTS_NAME, "missing.*decoder_ln.weight"), (no_weights, WEIGHTS_NAME, "missing"),
            (not_safetensors, WEIGHTS_NAME, "safetensors")]


@pytest.mark.parametrize("corrupt, file, reason", _corrupt_cases(), ids=lambda x: getattr(x, "__name__", None))
def test_corrupt_checkpoints_raise_value_error(tmp_path, corrupt, file, reason):
    save_pretrained(make_model(), tmp_path)
    corrupt(tmp_path)
    with pytest.raises(ValueError, match=reason) as info:
        load_pretrained(tmp_path)
    assert file in str(info.value)


def test_names_resolve_to_shipped_checkpoints(tmp_path, monkeypatch):
    import mstoolkit.checkpoint as ckpt

    save_pretrained(make_model(), tmp_path / "demo")
    monkeypatch.setattr(ckpt, "SHIPPED_DIR", tmp_path)
    assert load_pretrained("demo").config.vocab_size == V
    with pytest.raises(FileNotFoundError, match="no-such-model.*available: \\['demo'\\]"):
        load_pretrained("no-such-model")


def test_debug_model_is_in_memory_and_deterministic():
    a, b = MusicStyleTransformer.from_pretrained("debug"), debug_model()
    assert a.config == ModelConfig.preset("debug")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_int8_quantization_is_smaller_and_close():
    torch.manual_seed(0)
    model = MusicStyleTransformer(ModelConfig.preset("tiny", vocab_size=V, n_mels=N_MELS, dropout=0.0)).eval()
    content, mel, tgt_in, _ = batch()
    q = quantize_int8(model)
    ref, out = model(content, mel, tgt_in)[0], q(content, mel, tgt_in)[0]
    assert state_size_bytes(q) < 0.6 * state_size_bytes(model)
    assert (out - ref).abs().max() < 0.1 * ref.abs().max()
    assert (out.argmax(-1) == ref.argmax(-1)).float().mean() > 0.9
    assert type(model.encoder[0].attn.qkv) is torch.nn.Linear  # the source model is untouched


# ------------------------------------------------------------------------------ light imports
def test_imports_need_only_torch_and_numpy():
    code = textwrap.dedent(f"""
        import sys, importlib.util
        for name in ["pretty_midi", "music21", "librosa", "plotly", "ipywidgets", "IPython", "safetensors",
                     "soundfile", "mido", "scipy", "pandas", "matplotlib", "tqdm", "yaml"]:
            sys.modules[name] = None  # any import of these now fails
        sys.path.insert(0, {str(ROOT)!r})
        import mstoolkit.model, mstoolkit.losses, mstoolkit.generate, mstoolkit.checkpoint
        for script in ["bench_model", "seed_model"]:
            spec = importlib.util.spec_from_file_location(script, {str(ROOT / "benchmarks")!r} + f"/{{script}}.py")
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        m = mstoolkit.checkpoint.debug_model()
        print("ok", m.num_parameters())
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


# ------------------------------------------------------------------------------ beat grid
def test_beat_grid_indices_count_bars_and_forward_fill_positions():
    from mstoolkit.model import beat_grid_indices

    cfg = ModelConfig.preset("debug", vocab_size=60, bar_id=3, position_id=10, n_positions=20, grid_bars=4)
    P = lambda tick: 10 + tick  # noqa: E731 (Position_tick)
    ids = torch.tensor([[1, 3, P(0), 40, 41, P(6), 42, 3, 50, P(2), 43, 3, 3, 3, P(1)]])
    bar, position = beat_grid_indices(ids, cfg)
    assert bar.tolist() == [[0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 4, 5, 5]]  # the embedding takes it modulo grid_bars
    assert position.tolist() == [[0, 0, 1, 1, 1, 7, 7, 0, 0, 3, 3, 0, 0, 0, 2]]


def test_beat_grid_model_decodes_step_by_step_like_the_full_pass():
    cfg = ModelConfig.preset("debug", vocab_size=60, n_mels=16, bar_id=3, position_id=10, n_positions=20)
    torch.manual_seed(0)
    model = MusicStyleTransformer(cfg).eval()
    assert model.content_grid is not None and model.target_grid is not None
    content = torch.tensor([[3, 10, 40, 41, 16, 42, 3, 12, 43]])
    target = torch.tensor([[1, 3, 10, 40, 44, 3, 3, 15, 41, 42]])
    mel = torch.randn(1, 16, 20)
    with torch.no_grad():
        memory, mask = model.encode(content, model.style_encoder(mel))
        full = model.head(model.decode(target, memory, mask))  # (1, T, V)
        cache = model.new_cache(1, 16, content.shape[1])
        model.fill_cross(cache, memory, mask)
        steps = [model.decode_step(target[:, t], torch.tensor([t]), cache) for t in range(target.shape[1])]
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-4)
    # the grid changes the result: the same weights without it give other logits
    plain = MusicStyleTransformer(ModelConfig.preset("debug", vocab_size=60, n_mels=16)).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "grid" not in k})
    with torch.no_grad():
        assert not torch.allclose(plain(content, mel, target)[0], full)


def test_time_bias_model_decodes_step_by_step_like_the_full_pass_and_favours_same_time_content():
    cfg = ModelConfig.preset("debug", vocab_size=60, n_mels=16, n_heads=2, bar_id=3, position_id=10, n_positions=20,
                             time_bias=True)
    torch.manual_seed(0)
    model = MusicStyleTransformer(cfg).eval()
    content = torch.tensor([[3, 10, 40, 41, 16, 42, 3, 12, 43, 0, 0]])  # padded at the end
    target = torch.tensor([[1, 3, 10, 40, 44, 3, 3, 15, 41, 42]])
    mel = torch.randn(1, 16, 20)
    with torch.no_grad():
        memory, mask = model.encode(content, model.style_encoder(mel))
        full = model.head(model.decode(target, memory, mask, content_ids=content))  # (1, T, V)
        cache = model.new_cache(1, 16, content.shape[1])
        model.fill_cross(cache, memory, mask, content)
        steps = [model.decode_step(target[:, t], torch.tensor([t]), cache) for t in range(target.shape[1])]
        _, _, maps = model(content, mel, target, return_attn=True)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-4)
    bias = model.cross_time_bias(*model.musical_times(content, target), mask)  # (1, H, T, S)
    assert bias.shape == (1, 2, 10, 11) and torch.isinf(bias[..., 9:]).all()  # padding never attended
    assert bias[0, 0, 3, 1] == 0 and bias[0, 0, 3, 4] < 0  # target Position_0 (bar 1) vs content ticks 0 and 6
    assert (bias[0, 1, :, :9] == 0).all()  # the last head sees the whole content
    assert maps.cross[0][0, :, :, 9:].abs().max() == 0
    with pytest.raises(ValueError, match="content_ids"):
        model.decode(target, memory, mask)
    with pytest.raises(ValueError, match="beat grid"):
        ModelConfig.preset("debug", vocab_size=60, time_bias=True)


# ----------------------------------------------------------------------------- copy head
COPY_GRID = dict(vocab_size=60, n_mels=16, n_heads=2, bar_id=3, position_id=10, n_positions=20, pitch_id=40,
                 n_pitches=12)


def _copy_model(**overrides):
    torch.manual_seed(0)
    return MusicStyleTransformer(ModelConfig.preset("debug", **{**COPY_GRID, "copy": True, **overrides})).eval()


@pytest.mark.parametrize("time_bias, octaves", [(False, 0), (True, 0), (True, 1)],
                         ids=["copy", "copy+time_bias", "copy+octaves"])
def test_copy_model_decodes_step_by_step_like_the_full_pass(time_bias, octaves):
    model = _copy_model(time_bias=time_bias, copy_octaves=octaves)
    content = torch.tensor([[3, 10, 40, 41, 16, 42, 3, 12, 43, 0, 0],
                            [3, 10, 45, 3, 14, 47, 48, 0, 0, 0, 0]])  # padded at the end
    target = torch.tensor([[1, 3, 10, 40, 44, 3, 3, 15, 41, 42], [1, 3, 12, 47, 3, 10, 45, 46, 0, 0]])
    mel = torch.randn(2, 16, 20)
    with torch.no_grad():
        full, _ = model(content, mel, target)  # (B, T, V) log-probabilities
        memory, mask = model.encode(content, model.style_encoder(mel))
        cache = model.new_cache(2, 16, content.shape[1])
        model.fill_cross(cache, memory, mask, content)
        steps = [model.decode_step(target[:, t], torch.tensor([t]), cache) for t in range(target.shape[1])]
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(full.exp().sum(-1), torch.ones(2, 10))  # a normalised mixture


def test_copy_head_puts_pointer_mass_only_on_content_pitches_and_maps_show_it():
    model = _copy_model(time_bias=True)
    content = torch.tensor([[3, 10, 40, 41, 16, 42, 3, 12, 43, 0, 0]])
    target = torch.tensor([[1, 3, 10, 40, 44, 3, 3, 15, 41, 42]])
    with torch.no_grad():
        logits, _, maps = model(content, torch.randn(1, 16, 20), target, return_attn=True)
    pointer, copy_prob = maps.copy[0], maps.copy_prob  # (1, 1, T, S), (1, T)
    assert pointer.shape == (1, 1, 10, 11) and copy_prob.shape == (1, 10)
    is_pitch = (content >= 40) & (content < 52)
    assert pointer[..., ~is_pitch[0]].abs().max() == 0  # never Bar, Position, padding
    torch.testing.assert_close(pointer.sum(-1), torch.ones(1, 1, 10))
    assert ((copy_prob > 0) & (copy_prob < 1)).all()
    # p = (1 - c) softmax(vocab logits) + c * pointer mass: the copied mass lands on the content pitches
    p = logits.exp()[0, 3]  # after target Position_0 of bar 1
    assert p[40:52].sum() >= copy_prob[0, 3] - 1e-6
    # at time 0 the pointer prefers the pitches sounding at time 0 (ids 40, 41) over those at ticks 6 and 50
    assert pointer[0, 0, 3, 2] + pointer[0, 0, 3, 3] > pointer[0, 0, 3, 5] + pointer[0, 0, 3, 8]


def test_copy_head_computes_the_pointer_generator_mixture_by_its_definition():
    """The fast path (one-hot matmul, mixing only the Pitch columns) equals the formula written out with a
    scatter over the whole vocabulary, in value and in gradient."""
    model = _copy_model(time_bias=True)
    head = model.copy_head
    torch.manual_seed(1)
    B, T, S, C, V = 2, 5, 11, model.config.d_model, model.config.vocab_size
    hidden, logits, memory = torch.randn(B, T, C, requires_grad=True), torch.randn(B, T, V), torch.randn(B, S, C)
    content = torch.tensor([[3, 10, 40, 41, 16, 42, 3, 12, 43, 0, 0], [3, 10, 51, 51, 3, 14, 47, 0, 0, 0, 0]])
    bias = head.bias(content, torch.randint(0, 100, (B, T)), torch.randint(0, 100, (B, S)))
    log_p, pointer, copy_prob = head(hidden, logits, head.key(memory), bias, content)
    copied = torch.zeros(B, T, V).scatter_add(2, content[:, None, :].expand(B, T, S), pointer)  # (B, T, V)
    expected = (1 - copy_prob)[..., None] * logits.softmax(-1) + copy_prob[..., None] * copied
    torch.testing.assert_close(log_p.exp(), expected)
    (g1,) = torch.autograd.grad(log_p[:, :, 40:52].exp().sum() + log_p[:, :, 5].sum(), hidden, retain_graph=True)
    (g2,) = torch.autograd.grad(expected[:, :, 40:52].sum() + expected[:, :, 5].log().sum(), hidden)
    torch.testing.assert_close(g1, g2)


def test_octave_moves_carry_the_copied_mass_twelve_semitones_and_start_near_staying():
    model = _copy_model(copy_octaves=1, n_pitches=40, vocab_size=100)  # Pitch ids 40..79
    head = model.copy_head
    moves = torch.softmax(head.octave.bias.detach(), -1)
    assert moves.argmax() == 1 and 0.89 < float(moves[1]) < 0.91  # down, stay, up
    copied = torch.zeros(1, 1, 40)
    copied[0, 0, 15] = 1.0  # all pointer mass on the content's pitch index 15
    moved = head._move_octaves(copied, torch.tensor([[[0.2, 0.5, 0.3]]]))
    expected = torch.zeros(1, 1, 40)
    expected[0, 0, [3, 15, 27]] = torch.tensor([0.2, 0.5, 0.3])
    torch.testing.assert_close(moved, expected)
    copied[0, 0, 15], copied[0, 0, 35] = 0.0, 1.0  # near the top: an octave up falls off the range
    torch.testing.assert_close(head._move_octaves(copied, torch.tensor([[[0.2, 0.5, 0.3]]]))[0, 0, [23, 35]],
                               torch.tensor([0.2, 0.5]) / 0.7)
    with pytest.raises(ValueError, match="needs copy=True"):
        ModelConfig.preset("debug", **{**COPY_GRID, "copy_octaves": 1})


def test_octave_copy_learns_a_pitch_an_octave_below_the_content():
    """The target is the content's (random) pitch an octave lower: a plain copy cannot reach it, the octave
    move can."""
    g = torch.Generator().manual_seed(0)
    losses = {}
    for octaves in (0, 1):
        torch.manual_seed(0)
        model = MusicStyleTransformer(ModelConfig.preset("debug", **{**COPY_GRID, "n_pitches": 40, "vocab_size": 100, "copy": True,
                                                                     "copy_octaves": octaves}))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for step in range(61):
            pitch = torch.randint(52, 80, (32,), generator=g)  # Pitch ids 52..79: an octave lower stays in range
            content = torch.tensor([3, 10, 0, 0]).repeat(32, 1)
            content[:, 2] = pitch
            target = torch.tensor([1, 3, 10, 0]).repeat(32, 1)
            target[:, 3] = pitch - 12
            if step == 60:
                with torch.no_grad():
                    logits, _ = model(content, torch.zeros(32, 16, 4), target[:, :-1])
                losses[octaves] = float(torch.nn.functional.cross_entropy(logits[:, 2], target[:, 3]))
                break
            _, loss = model(content, torch.zeros(32, 16, 4), target[:, :-1], target[:, 1:])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert losses[1] < 0.3 < losses[0]


def test_a_content_without_pitches_makes_the_copy_model_generate():
    model = _copy_model()
    content = torch.tensor([[3, 10, 3, 12]])  # bars and positions, no notes
    with torch.no_grad():
        logits, _, maps = model(content, torch.randn(1, 16, 8), torch.tensor([[1, 3, 10]]), return_attn=True)
    assert torch.isfinite(logits).all() and (maps.copy_prob == 0).all()
    torch.testing.assert_close(logits.exp().sum(-1), torch.ones(1, 3))


def test_copy_model_trains_to_copy_a_pitch_it_cannot_guess():
    """The target repeats the content's (random) pitch: only a copy can know it. A few steps of Adam on the
    copy model beat the same budget without the copy head."""
    def batch(g):
        pitch = torch.randint(40, 52, (32,), generator=g)
        content = torch.stack([torch.tensor([3, 10, 0, 0]) for _ in range(32)])
        content[:, 2] = pitch
        target = torch.stack([torch.tensor([1, 3, 10, 0]) for _ in range(32)])
        target[:, 3] = pitch
        return content, target

    losses = {}
    for copy in (False, True):
        torch.manual_seed(0)
        model = MusicStyleTransformer(ModelConfig.preset("debug", **{**COPY_GRID, "copy": copy}))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        g = torch.Generator().manual_seed(0)
        for _ in range(60):
            content, target = batch(g)
            _, loss = model(content, torch.zeros(32, 16, 4), target[:, :-1], target[:, 1:])
            opt.zero_grad()
            loss.backward()
            opt.step()
        content, target = batch(torch.Generator().manual_seed(1))
        with torch.no_grad():
            logits, _ = model(content, torch.zeros(32, 16, 4), target[:, :-1])
        losses[copy] = float(torch.nn.functional.cross_entropy(logits[:, 2], target[:, 3]))
    assert losses[True] < 0.2 < losses[False]  # a guess among 12 pitches costs ~log(12) = 2.5


def test_copy_config_needs_the_pitch_ids_and_old_configs_still_load():
    with pytest.raises(ValueError, match="beat grid"):
        ModelConfig.preset("debug", vocab_size=60, copy=True)
    with pytest.raises(ValueError, match="Pitch token ids"):
        ModelConfig.preset("debug", **{**COPY_GRID, "n_pitches": 0, "copy": True})
    old = ModelConfig.preset("debug", vocab_size=60).to_dict()
    for key in ("copy", "pitch_id", "n_pitches"):
        del old[key]
    assert ModelConfig.from_dict(old).copy is False  # configs saved before the copy head


# ----------------------------------------------------------------------------- pitch hints
def _hint_model(**overrides):
    from mstoolkit.tokenizer import RemiTokenizer

    tok = RemiTokenizer()
    torch.manual_seed(0)
    cfg = ModelConfig.preset("debug", vocab_size=tok.vocab_size, n_mels=16, n_heads=2, pitch_hints=True,
                             **ModelConfig.beat_grid_from(tok), **overrides)
    return tok, MusicStyleTransformer(cfg).eval()


def _chord_then_bass(tok):
    """A C major triad held for a half note (ticks 0-24), then G2 for a quarter (24-36)."""
    from mstoolkit.piece import Note, Piece

    notes = [Note(start=0, duration=24, pitch=p, velocity=80) for p in (60, 64, 67)]
    return tok.encode(Piece(notes + [Note(start=24, duration=12, pitch=43, velocity=80)]))


def test_pitch_hint_maps_read_the_content_notes_around_the_query_time():
    tok, model = _hint_model()
    from mstoolkit.model import ContentNotes

    notes = ContentNotes.from_ids(torch.tensor([_chord_then_bass(tok)]), model.config)
    assert sorted(notes.pitch[notes.pitch >= 0].tolist()) == [43, 60, 64, 67]
    assert notes.end[notes.pitch == 43].item() == 48 + 36  # bar 1 starts at tick 48 of musical time
    t = torch.tensor([48 + 12, 48 + 30])  # beat 2 of the triad, beat 3 (the bass G)
    maps = model.pitch_hints.features(notes, t, torch.zeros(2, dtype=torch.long))  # (2, 128, 27)
    on = lambda query, feature: maps[query, :, feature].nonzero()[:, 0].tolist()  # noqa: E731
    # window "now": played at shifts -12, 0, +12, then lowest x 3, highest x 3
    assert on(0, 1) == [60, 64, 67] and on(1, 1) == [43]
    assert on(0, 0) == [48, 52, 55]  # out[p] = played[p - 12]: the triad an octave down
    assert on(0, 2) == [72, 76, 79]
    assert on(0, 4) == [60] and on(0, 7) == [67]
    assert on(1, 3) == [31] and on(1, 8) == [55]  # the bass G, lowest an octave down, highest an octave up
    # window "around" (a half note either side) of the second query holds all four notes; lowest is G2
    around = 2 * 9
    assert on(1, around + 1) == [43, 60, 64, 67] and on(1, around + 4) == [43] and on(1, around + 7) == [67]


@pytest.mark.parametrize("extra", [{}, {"time_bias": True}, {"time_bias": True, "copy": True}],
                         ids=["hints", "hints+time_bias", "hints+copy"])
def test_pitch_hint_model_decodes_step_by_step_like_the_full_pass(extra):
    tok, model = _hint_model(**extra)
    with torch.no_grad():
        torch.nn.init.normal_(model.pitch_hints.weight.weight, 0, 1.0)  # hints large enough to matter
    content = torch.tensor([_chord_then_bass(tok), _chord_then_bass(tok)[:-3] + [0, 0, 0]])
    target = torch.tensor([_chord_then_bass(tok)[:-1]] * 2)
    mel = torch.randn(2, 16, 20)
    with torch.no_grad():
        full, _, maps = model(content, mel, target, return_attn=True)
        memory, mask = model.encode(content, model.style_encoder(mel))
        cache = model.new_cache(2, target.shape[1] + 2, content.shape[1])
        model.fill_cross(cache, memory, mask, content)
        steps = [model.decode_step(target[:, t], torch.tensor([t]), cache) for t in range(target.shape[1])]
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-4, rtol=1e-4)
    is_program = torch.tensor([tok.token_types[i] == "Program" for i in target[0]])
    assert (maps.pitch_hint.abs().sum(-1) > 0).eq(is_program).all()  # hints exactly where a Pitch comes next


def test_pitch_hints_learn_a_bass_an_octave_below_the_content():
    """The target's pitch is the lowest content note an octave down, in a random triad: hard to guess from
    the vocabulary, one map of the hints. A few Adam steps of the hint model beat the same without."""
    from mstoolkit.piece import Note, Piece

    tok = _hint_model()[0]
    gen = torch.Generator().manual_seed(0)
    contents, targets = [], []
    for _ in range(32):
        root = int(torch.randint(48, 72, (1,), generator=gen))
        chord = [Note(start=0, duration=12, pitch=root + i, velocity=80) for i in (0, 4, 7)]
        contents.append(tok.encode(Piece(chord)))
        targets.append(tok.encode(Piece([Note(start=0, duration=12, pitch=root - 12, velocity=80)])))
    content, target = torch.tensor(contents), torch.tensor(targets)
    where = [i for i, t in enumerate(target[0, 1:].tolist()) if tok.token_types[t] == "Pitch"]
    mel = torch.zeros(32, 16, 8)
    losses = {}
    for hints in (False, True):
        torch.manual_seed(0)
        cfg = ModelConfig.preset("debug", vocab_size=tok.vocab_size, n_mels=16, n_heads=2, pitch_hints=hints,
                                 **ModelConfig.beat_grid_from(tok))
        model = MusicStyleTransformer(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(60):
            logits, loss = model(content, mel, target[:, :-1], target[:, 1:])
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses[hints] = float(F.cross_entropy(logits[:, where[0]].detach(), target[:, 1 + where[0]]))
    assert losses[True] < 0.3 < losses[False]


def test_pitch_hints_config_needs_the_token_ids_and_old_configs_still_load():
    with pytest.raises(ValueError, match="beat grid"):
        ModelConfig.preset("debug", vocab_size=60, pitch_hints=True)
    with pytest.raises(ValueError, match="duration token ids"):
        ModelConfig.preset("debug", **{**COPY_GRID, "pitch_hints": True, "program_id": 20, "n_programs": 5})
    old = ModelConfig.preset("debug", vocab_size=60).to_dict()
    for key in ("pitch_hints", "program_id", "n_programs", "duration_id", "n_durations"):
        del old[key]
    assert ModelConfig.from_dict(old).pitch_hints is False
