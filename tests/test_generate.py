"""Sampling filters, cached vs. uncached decoding, grammar constraints, limits, streaming, transfer."""
import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mstoolkit.generate import (Decoder, StyleStream, apply_temperature, generate, sample, stream, top_k_filter,
                                top_p_filter)
from mstoolkit.model import ModelConfig, MusicStyleTransformer


# A small REMI-like vocabulary and grammar (built here so these tests do not depend on the tokenizer):
# 0 PAD, 1 BOS, 2 EOS, 3 Bar, 4-7 Position, 8-15 Pitch, 16-19 Velocity, 20-23 Duration.
V, BAR, N_MELS = 24, 3, 16
START, AFTER_BAR, AFTER_POS, AFTER_PITCH, AFTER_VEL, END, AFTER_DUR = range(7)


def make_grammar(eos_after_bar=True):
    ns = np.full((7, V), -1, dtype=np.int32)
    ns[START, BAR] = AFTER_BAR
    for s in (AFTER_BAR, AFTER_DUR):
        ns[s, 4:8], ns[s, BAR] = AFTER_POS, AFTER_BAR
        ns[s, 2] = END if eos_after_bar or s == AFTER_DUR else -1
    ns[AFTER_POS, 8:16], ns[AFTER_PITCH, 16:20], ns[AFTER_VEL, 20:24] = AFTER_PITCH, AFTER_VEL, AFTER_DUR
    ns[END, 0] = END
    accepting = np.zeros(7, dtype=bool)  # the states where EOS is allowed, and the end
    accepting[[END, AFTER_DUR] + ([AFTER_BAR] if eos_after_bar else [])] = True
    return SimpleNamespace(next_state=ns, start_state=START, accepting=accepting)


def accepts(grammar, ids):
    """[BOS, ..., EOS] walks the grammar and ends in an accepting state."""
    assert ids[0] == 1 and ids[-1] == 2, ids
    state = grammar.start_state
    for t in ids[1:]:
        state = grammar.next_state[state, t]
        if state < 0:
            return False
    return bool(grammar.accepting[state])


def make_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return MusicStyleTransformer(ModelConfig.preset("debug", vocab_size=V, n_mels=N_MELS, **overrides)).eval()


def inputs(B=3, S=14, seed=1):
    g = torch.Generator().manual_seed(seed)
    content = torch.randint(3, V, (B, S), generator=g)
    content[0, 10:] = 0  # a padded row
    return content, torch.randn(N_MELS, 21, generator=g) * 20 - 40


def seeded(seed=7):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------ filters
def test_temperature():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    assert torch.equal(apply_temperature(logits, 0.5), logits * 2)
    flat, sharp = apply_temperature(logits, 10).softmax(-1), apply_temperature(logits, 0.1).softmax(-1)
    assert flat.max() < logits.softmax(-1).max() < sharp.max()
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(logits, 0)


def test_top_k():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0], [0.0, 0.0, 9.0, 1.0]])
    out = top_k_filter(logits, 2)
    assert torch.equal(torch.isfinite(out), torch.tensor([[False, True, False, True], [False, False, True, True]]))
    assert torch.equal(out[torch.isfinite(out)], logits[torch.isfinite(out)])
    assert torch.equal(top_k_filter(logits, 10), logits)
    with pytest.raises(ValueError, match="k must be"):
        top_k_filter(logits, 0)


def test_top_p():
    probs = torch.tensor([[0.5, 0.05, 0.3, 0.15], [0.97, 0.01, 0.01, 0.01]])
    keep = torch.isfinite(top_p_filter(probs.log(), 0.8))
    assert torch.equal(keep, torch.tensor([[True, False, True, False], [True, False, False, False]]))
    keep = torch.isfinite(top_p_filter(probs.log(), 0.81))
    assert torch.equal(keep[0], torch.tensor([True, False, True, True]))
    assert torch.isfinite(top_p_filter(probs.log(), 1.0)).all()
    with pytest.raises(ValueError, match="p must be"):
        top_p_filter(probs, 0.0)


def test_sample_follows_the_distribution():
    probs = torch.tensor([0.5, 0.3, 0.2, 0.0]).expand(40000, 4)
    draws = sample(probs, seeded())
    freq = torch.bincount(draws, minlength=4).float() / len(draws)
    assert torch.allclose(freq, probs[0], atol=0.01) and freq[3] == 0


# ------------------------------------------------------------------------------ cached decoding
@pytest.mark.parametrize("options", [dict(temperature=0), dict(temperature=1.0), dict(temperature=1.3, top_k=6),
                                     dict(temperature=0.9, top_p=0.8)], ids=["greedy", "t1", "topk", "topp"])
@pytest.mark.parametrize("constrained", [False, True], ids=["free", "grammar"])
def test_cached_equals_uncached(options, constrained):
    model, (content, mel) = make_model(), inputs()
    grammar = make_grammar() if constrained else None
    runs = [generate(model, content, mel, max_new_tokens=40, grammar=grammar, use_cache=cached,
                     generator=seeded(), **options) for cached in (True, False)]
    assert runs[0] == runs[1]
    assert model.generate(content, mel, max_new_tokens=40, grammar=grammar, generator=seeded(), **options) == runs[0]
    assert all(seq[0] == 1 and seq[-1] == 2 for seq in runs[0])


def test_batch_rows_are_independent():
    """Each row of a padded batch decodes as it would alone (greedy)."""
    model, (content, mel) = make_model(), inputs()
    batched = generate(model, content, mel, max_new_tokens=30, temperature=0, grammar=make_grammar())
    alone = generate(model, content[0, :10], mel, max_new_tokens=30, temperature=0, grammar=make_grammar())
    assert batched[0] == alone[0]


# ------------------------------------------------------------------------------ beam search
def sequence_log_prob(model, content, mel, rows, grammar):
    """Total log-probability of each ``[BOS, ...]`` row (PAD after EOS costs nothing) under the grammar
    mask, from one teacher-forced full pass (the reference a beam's running score must equal)."""
    out = torch.as_tensor(rows)  # (B, T)
    memory, memory_mask = model.encode(content, model.style_encoder(mel.expand(len(out), -1, -1)))
    logits = model.next_token_logits(out[:, :-1], memory, memory_mask, content).float()  # (B, T-1, V)
    totals = []
    for b, row in enumerate(out.tolist()):
        state, total = grammar.start_state, 0.0
        for i, token in enumerate(row[1:]):
            if token == 0:  # PAD after EOS
                break
            allowed = torch.as_tensor(grammar.next_state[state] >= 0)
            allowed[[0, 1]] = False  # PAD and BOS are never generated
            total += logits[b, i].masked_fill(~allowed, float("-inf")).log_softmax(-1)[token].item()
            state = grammar.next_state[state, token]
        totals.append(total)
    return totals


def test_beam_scores_are_the_log_probabilities_of_the_sequences_kept():
    """After every reorder of the KV cache and the step state, each hypothesis's running score is the
    log-probability of its own tokens, and the best is at least as likely as the greedy sequence. (The
    demo model, because a random one keeps its beams identical until the last tokens, where a wrong
    reorder would go unseen.)"""
    from mstoolkit.checkpoint import load_with_tokenizer
    from mstoolkit.data import style_reference
    from mstoolkit.generate import prepare_content, reference_mel
    from mstoolkit.piece import sample_paths

    model, tokenizer, _ = load_with_tokenizer("demo")
    content = torch.tensor([tokenizer.encode(prepare_content(tokenizer, sample_paths()["bwv66.6"]).slice_bars(0, 2))])
    mel = torch.as_tensor(reference_mel(style_reference("waltz"), n_mels=model.config.n_mels))
    grammar, K, n = tokenizer.grammar, 3, 120
    options = dict(max_new_tokens=n, temperature=0, grammar=grammar, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id)
    decoder = Decoder(model, content, mel, beam_size=K, **options)
    decoder.run()
    rows = decoder.out[:, : n + 1]
    assert (rows[1:] != rows[0]).any(dim=0).nonzero().min() < n - 20  # the beams part early
    grammar = SimpleNamespace(next_state=np.asarray(grammar.next_state), start_state=grammar.start_state)
    reference = torch.tensor(sequence_log_prob(model, content.repeat_interleave(K, 0), mel[None], rows.tolist(),
                                               grammar))
    assert torch.allclose(decoder.score, reference, atol=1e-3), (decoder.score, reference)
    greedy = Decoder(model, content, mel, **options)
    greedy.run()
    greedy_score = sequence_log_prob(model, content, mel[None], greedy.out.tolist(), grammar)[0]
    assert decoder.score.max().item() >= greedy_score - 1e-4


def test_beam_rows_are_independent_and_follow_the_grammar_and_bar_limit():
    model, (content, mel) = make_model(), inputs()
    options = dict(max_new_tokens=200, temperature=0, grammar=make_grammar(), bar_ids=[BAR], max_bars=2, beam_size=3)
    batched = generate(model, content, mel, **options)
    assert batched[1] == generate(model, content[1], mel, **options)[0]
    assert all(accepts(make_grammar(), seq) and seq.count(BAR) <= 2 for seq in batched)
    per_row_mels = mel.expand(3, -1, -1)  # one mel per content row: repeated for its beams
    assert generate(model, content, per_row_mels, **options) == batched


@pytest.mark.parametrize("penalty, best", [(0.0, "short"), (1.0, "long")])
def test_length_penalty_ranks_finished_beams_by_log_prob_per_token(penalty, best):
    """``sequences`` picks the beam with the highest ``log p / length ** length_penalty``: with 0 the
    likelier total (a short ending), with 1 the likelier token on average (a longer one)."""
    model, (content, mel) = make_model(), inputs()
    decoder = Decoder(model, content[:1], mel, max_new_tokens=8, temperature=0, beam_size=2, length_penalty=penalty)
    decoder.run()
    rows = {"short": [1, BAR, 2], "long": [1, BAR, 4, 8, 16, 20, 2]}  # 2 and 6 tokens after BOS
    decoder.out.fill_(0)
    for k, row in enumerate(rows.values()):
        decoder.out[k, : len(row)] = torch.tensor(row)
    decoder.score.copy_(torch.tensor([-3.0, -4.8]))  # totals -3.0 > -4.8; per token -1.5 < -0.8
    assert decoder.sequences() == [rows[best]]


@pytest.mark.parametrize("bad", [dict(beam_size=0), dict(beam_size=2, temperature=0.9),
                                 dict(beam_size=2, temperature=0, compile=True)])
def test_bad_beam_options_raise(bad):
    model, (content, mel) = make_model(), inputs()
    with pytest.raises(ValueError, match="beam_size"):
        Decoder(model, content, mel, max_new_tokens=10, **bad)


def test_compiled_step_traces_as_one_graph():
    """The step the CUDA graph captures has no graph break (fullgraph) and computes the same tokens."""
    model, (content, mel) = make_model(), inputs()
    kw = dict(max_new_tokens=12, temperature=0, grammar=make_grammar(), bar_ids=[BAR], max_bars=2)
    assert (generate(model, content, mel, compile={"backend": "aot_eager"}, **kw)
            == generate(model, content, mel, **kw))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_equals_eager_on_gpu():
    model, (content, mel) = make_model(), inputs()
    model = model.cuda()
    kw = dict(max_new_tokens=40, temperature=0, grammar=make_grammar())
    graph = Decoder(model, content, mel, cuda_graph=True, **kw)
    assert graph.mode.endswith("cuda_graph")
    graph.run()
    assert graph.sequences() == generate(model, content, mel, cuda_graph=False, **kw)


# ------------------------------------------------------------------------------ constraints and limits
@pytest.mark.parametrize("seed", range(4))
def test_grammar_holds_for_a_random_model(seed):
    model, (content, mel) = make_model(seed), inputs(B=6, seed=seed)
    grammar = make_grammar(eos_after_bar=False)
    for max_new in (7, 60):  # 7: most rows hit the limit and are cut back to a complete prefix
        out = generate(model, content, mel, max_new_tokens=max_new, temperature=2.0, grammar=grammar,
                       generator=seeded(seed))
        assert all(accepts(grammar, seq) for seq in out), out


def test_without_grammar_special_tokens_are_never_sampled():
    model, (content, mel) = make_model(), inputs()
    out = generate(model, content, mel, max_new_tokens=50, temperature=3.0, generator=seeded())
    assert all(0 not in seq and 1 not in seq[1:] for seq in out)


def test_bar_limit_ends_with_eos():
    model, (content, mel) = make_model(), inputs()
    out = generate(model, content, mel, max_new_tokens=400, temperature=1.0, grammar=make_grammar(),
                   bar_ids=[BAR], max_bars=2, generator=seeded())
    assert all(seq.count(BAR) <= 2 and seq[-1] == 2 for seq in out)
    with pytest.raises(ValueError, match="max_bars"):
        generate(model, content, mel, max_bars=2)  # no bar ids


def test_stops_early_when_every_row_ended():
    model, (content, mel) = make_model(), inputs()
    decoder = Decoder(model, content, mel, max_new_tokens=400, grammar=make_grammar(), bar_ids=[BAR], max_bars=1,
                      generator=seeded())
    decoder.run()
    assert decoder.n < 400 and bool(decoder.finished.all())
    out = decoder.out[:, : decoder.n + 1]
    for row, seq in zip(out.tolist(), decoder.sequences()):
        assert row[: len(seq)] == seq and set(row[len(seq):]) <= {0}  # PAD after EOS
    with pytest.raises(ValueError, match="max_new_tokens"):
        Decoder(model, content, mel, max_new_tokens=model.config.max_len)


def test_bad_style_mel_raises():
    model, (content, _) = make_model(), inputs()
    with pytest.raises(ValueError, match="style_mel"):
        generate(model, content, torch.zeros(N_MELS + 1, 5))
    with pytest.raises(ValueError, match="style_mel"):
        generate(model, content, torch.zeros(2, N_MELS, 5))  # batch 3 content, 2 mels


# ------------------------------------------------------------------------------ streaming
def test_stream_yields_bars_and_matches_generate():
    model, (content, mel) = make_model(), inputs(B=1)
    kw = dict(temperature=0, grammar=make_grammar(eos_after_bar=False))
    live = stream(model, content, mel, bar_ids=[BAR], max_new_tokens=120, **kw)
    bars = list(live)
    assert len(bars) >= 2 and all(bar[0] == BAR for bar in bars)
    assert [1] + sum(bars, []) == [t for t in live.ids if t != 2]
    assert live.sequence() == generate(model, content, mel, max_new_tokens=120, **kw)[0]
    with pytest.raises(ValueError, match="batch 1"):
        StyleStream(Decoder(model, inputs()[0], mel, bar_ids=[BAR]))


def test_style_switch_mid_stream():
    model, (content, mel_a) = make_model(), inputs(B=1)
    mel_b = mel_a.flip(-1) * 0.5 - 30
    kw = dict(temperature=1.0, grammar=make_grammar(eos_after_bar=False), max_new_tokens=150)
    plain = stream(model, content, mel_a, bar_ids=[BAR], generator=seeded(), **kw)
    switched = StyleStream(Decoder(model, content, mel_a, bar_ids=[BAR], generator=seeded(), **kw))
    assert next(plain) == next(switched)
    n_before = switched.decoder.n
    switched_rest = switched.send(mel_b) + sum(switched, [])
    assert sum(plain, []) != switched_rest  # the new reference changes what follows
    latency = switched.last_switch
    assert set(latency) == {"encode", "first_token", "first_bar"}
    assert 0 < latency["encode"] <= latency["first_token"] <= latency["first_bar"]
    # the switched stream equals uncached decoding that switches at the same token
    reference = Decoder(model, content, mel_a, use_cache=False, generator=seeded(), **kw)
    for _ in range(n_before):
        reference.step()
    reference.set_style(mel_b)
    reference.run()
    assert reference.sequences()[0] == switched.sequence()


# ------------------------------------------------------------------------------ transfer (integration)
needs_tokenizer = pytest.mark.skipif(importlib.util.find_spec("mstoolkit.tokenizer") is None
                                     or importlib.util.find_spec("mstoolkit.audio") is None,
                                     reason="tokenizer/audio modules not present")


@needs_tokenizer
def test_transfer_returns_a_valid_piece(tmp_path):
    from mstoolkit.audio import mel as log_mel
    from mstoolkit.piece import Note, Piece
    from mstoolkit.tokenizer import RemiTokenizer

    tokenizer = RemiTokenizer()
    torch.manual_seed(0)
    model = MusicStyleTransformer(ModelConfig.preset("debug", vocab_size=tokenizer.vocab_size)).eval()
    content = Piece([Note(12 * i, 12, 60 + i % 5) for i in range(12)])
    reference = log_mel(np.sin(np.linspace(0, 3000, 22050)).astype(np.float32))
    for seed in range(3):
        piece = model.transfer(tokenizer, content, reference, temperature=1.5, seed=seed, max_new_tokens=200)
        assert isinstance(piece, Piece) and piece.validate() is piece
    midi = tmp_path / "content.mid"
    content.save_midi(midi)
    a = model.transfer(tokenizer, str(midi), reference, temperature=0, max_new_tokens=60)
    b = model.transfer(tokenizer, content, reference, temperature=0, max_new_tokens=60)
    assert a.notes == b.notes and a.tempos == b.tempos and a.name == "content"
    with pytest.raises(ValueError, match="reference"):
        model.transfer(tokenizer, content, np.zeros((3, 4, 5)))


@needs_tokenizer
def test_real_grammar_and_bar_limit_for_a_random_model():
    from mstoolkit.tokenizer import RemiTokenizer

    tokenizer = RemiTokenizer()
    torch.manual_seed(0)
    model = MusicStyleTransformer(ModelConfig.preset("debug", vocab_size=tokenizer.vocab_size, n_mels=N_MELS)).eval()
    bar_ids = tokenizer.bar_ids
    content = torch.randint(3, tokenizer.vocab_size, (4, 30), generator=seeded())
    for max_new in (9, 150):
        out = generate(model, content, torch.zeros(N_MELS, 10) - 40, max_new_tokens=max_new, temperature=1.5,
                       grammar=tokenizer.grammar, bar_ids=bar_ids, max_bars=2, generator=seeded(max_new))
        for seq in out:
            assert tokenizer.grammar.accepts(seq) and sum(t in bar_ids for t in seq) <= 2
            tokenizer.decode(seq)  # raises on an invalid sequence


@needs_tokenizer
def test_transfer_works_window_by_window_on_the_content_bar_lines():
    from mstoolkit.audio import mel as log_mel
    from mstoolkit.piece import Note, Piece, TimeSignature
    from mstoolkit.tokenizer import RemiTokenizer

    tokenizer = RemiTokenizer()
    torch.manual_seed(0)
    config = ModelConfig.preset("debug", vocab_size=tokenizer.vocab_size, **ModelConfig.beat_grid_from(tokenizer))
    model = MusicStyleTransformer(config).eval()
    # 10 bars: 4/4 then 3/4 from bar 6 (tick 5 * 48 = 240)
    content = Piece([Note(12 * i, 12, 60 + i % 7) for i in range(5 * 4 + 5 * 3)],
                    time_signatures=[TimeSignature(0, 4, 4), TimeSignature(240, 3, 4)])
    reference = log_mel(np.sin(np.linspace(0, 3000, 22050)).astype(np.float32))
    out = model.transfer(tokenizer, content, reference, window_bars=3, temperature=1.0, seed=0, max_new_tokens=150)
    assert out.time_signatures == content.time_signatures and out.tempos == content.tempos
    assert out.notes and max(n.end for n in out.notes) <= 240 + 5 * 36  # nothing past the content's last bar
    short = model.transfer(tokenizer, content, reference, max_bars=2, temperature=1.0, seed=0, max_new_tokens=150)
    assert max(n.end for n in short.notes) <= 96
    with pytest.raises(ValueError, match="window_bars"):
        model.transfer(tokenizer, content, reference, window_bars=0)


@needs_tokenizer
def test_transfer_first_renders_the_content_as_training_showed_it():
    """Content is rendered "straight" before the model reads it (StyleBench never showed it raw MIDI);
    content_style=None reads it as given; an unknown style is refused by name."""
    from mstoolkit.audio import mel as log_mel
    from mstoolkit.piece import Note, Piece
    from mstoolkit.styles import render_style
    from mstoolkit.tokenizer import RemiTokenizer

    tokenizer = RemiTokenizer()
    torch.manual_seed(0)
    model = MusicStyleTransformer(ModelConfig.preset("debug", vocab_size=tokenizer.vocab_size)).eval()
    content = Piece([Note(12 * i + 1, 7, 60 + i % 5, velocity=30 + 6 * i) for i in range(12)], name="raw")
    reference = log_mel(np.sin(np.linspace(0, 3000, 22050)).astype(np.float32))
    shown = render_style(content, "straight")
    assert shown.notes != content.notes  # otherwise this test could not tell the two apart
    default = model.transfer(tokenizer, content, reference, temperature=1.0, seed=3, max_new_tokens=80)
    same = model.transfer(tokenizer, shown, reference, temperature=1.0, seed=3, max_new_tokens=80, content_style=None)
    assert default.notes == same.notes and default.tempos == same.tempos
    with pytest.raises(ValueError, match="unknown style 'polka'"):
        model.transfer(tokenizer, content, reference, content_style="polka")


@needs_tokenizer
def test_prepare_content_and_the_token_budget_are_what_transfer_uses():
    """One content preparation and one per-window budget, shared by transfer, the live session and the
    attention explorer."""
    from mstoolkit.generate import prepare_content, token_budget
    from mstoolkit.piece import Note, Piece
    from mstoolkit.styles import render_style
    from mstoolkit.tokenizer import RemiTokenizer

    tokenizer = RemiTokenizer()
    content = Piece([Note(12 * i + 1, 7, 60 + i % 5, velocity=30 + 6 * i) for i in range(12)], name="raw")
    assert prepare_content(tokenizer, content).notes == \
        tokenizer.quantize(render_style(tokenizer.quantize(content), "straight")).notes
    assert prepare_content(tokenizer, content, None).notes == tokenizer.quantize(content).notes
    assert token_budget(10, 4096) == 276 and token_budget(5000, 1024) == 1023


@needs_tokenizer
@pytest.mark.parametrize("window_beats", [0.0, 1.0])
def test_harmony_lock_keeps_every_generated_pitch_class_near_the_content(window_beats, chorale):
    """A random model writes random pitches; with the lock each pitched note's class sounds in the content
    within the window of its onset (checked on the decoded pieces, not on the lock's own tensors)."""
    from mstoolkit.harmony import HarmonyLock
    from mstoolkit.tokenizer import RemiTokenizer

    tokenizer = RemiTokenizer()
    torch.manual_seed(0)
    model = MusicStyleTransformer(ModelConfig.preset("debug", vocab_size=tokenizer.vocab_size, n_mels=N_MELS)).eval()
    windows = [chorale.slice_bars(first, 2) for first in (0, 2, 4)]
    content = [tokenizer.encode(w) for w in windows]
    kwargs = dict(max_new_tokens=300, temperature=1.5, grammar=tokenizer.grammar, bar_ids=tokenizer.bar_ids,
                  max_bars=2, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id)
    mel = torch.zeros(N_MELS, 10) - 40
    locked = generate(model, content, mel, harmony=HarmonyLock(tokenizer, window_beats), generator=seeded(3), **kwargs)
    free = generate(model, content, mel, generator=seeded(3), **kwargs)
    w = round(12 * window_beats)  # ticks (12 per quarter note)

    def off_harmony(window, ids):
        notes = tokenizer.decode(ids).notes
        sounding = lambda t: {n.pitch % 12 for n in window.notes if n.start <= t + w and n.start + n.duration > t - w}
        return [n for n in notes if not n.is_drum and sounding(n.start) and n.pitch % 12 not in sounding(n.start)]

    assert sum(len(tokenizer.decode(ids).notes) for ids in locked) > 20
    assert all(off_harmony(window, ids) == [] for window, ids in zip(windows, locked))
    assert sum(len(off_harmony(window, ids)) for window, ids in zip(windows, free)) > 10  # the lock did the work
    with pytest.raises(ValueError, match="window_beats"):
        HarmonyLock(tokenizer, -1)


@needs_tokenizer
def test_unique_notes_forbid_only_a_pitch_the_same_instrument_started_at_this_onset():
    """After ``Program_0 Pitch_60`` at one Position, ``Pitch_60`` is banned for Program_0 there, and only
    there: another pitch, another instrument, or the next Position may take it again."""
    from mstoolkit.tokenizer import RemiTokenizer
    from mstoolkit.unique_notes import UniqueNotes

    tokenizer = RemiTokenizer()
    ids = lambda *names: torch.tensor([tokenizer.vocab[n] for n in names])  # noqa: E731
    state = UniqueNotes(tokenizer).bind(1, max_tokens=64)
    name = {i: n for n, i in tokenizer.vocab.items()}
    banned = lambda last: [name[i] for i in torch.isinf(state.mask(ids(last)))[0].nonzero().flatten().tolist()]  # noqa: E731
    for token in ids("Bar", "TimeSig_4/4", "Position_0", "Tempo_120.0", "Program_0"):
        state.update(token[None])
    assert banned("Program_0") == []
    for token in ids("Pitch_60", "Velocity_80", "Duration_12", "Program_0"):
        state.update(token[None])
    assert banned("Program_0") == ["Pitch_60"]  # the same note again at this onset
    assert banned("Velocity_80") == []  # only a Pitch decision is masked
    for token in ids("Pitch_64", "Velocity_80", "Duration_12", "Program_40"):
        state.update(token[None])
    assert banned("Program_40") == []  # another instrument may double the pitch
    for token in ids("Pitch_60", "Velocity_80", "Duration_12", "Position_6", "Program_0"):
        state.update(token[None])
    assert banned("Program_0") == []  # a new onset starts afresh
    state.reset()
    assert (state.notes == -1).all() and state.count.item() == 0


@needs_tokenizer
@pytest.mark.parametrize("beam_size", [1, 3])
def test_unique_notes_leave_no_note_twice_where_a_random_model_repeats_them(beam_size, chorale):
    """A random model decoding greedily repeats notes at one onset; with the rule no decoded piece has
    two notes of one instrument, pitch and onset, the cached and uncached paths agree, and the grammar holds."""
    from mstoolkit.tokenizer import RemiTokenizer
    from mstoolkit.unique_notes import UniqueNotes

    tokenizer = RemiTokenizer()
    torch.manual_seed(0)
    model = MusicStyleTransformer(ModelConfig.preset("debug", vocab_size=tokenizer.vocab_size, n_mels=N_MELS)).eval()
    content = [tokenizer.encode(chorale.slice_bars(first, 2)) for first in (0, 2)]
    kwargs = dict(max_new_tokens=200, temperature=0, grammar=tokenizer.grammar, bar_ids=tokenizer.bar_ids,
                  max_bars=2, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id, beam_size=beam_size)
    mel = torch.zeros(N_MELS, 10) - 40

    def repeats(rows):  # (notes that repeat one of their row, notes)
        keys = [[(n.start, n.pitch, n.program, n.is_drum) for n in tokenizer.decode(ids).notes] for ids in rows]
        return sum(len(row) - len(set(row)) for row in keys), sum(map(len, keys))

    rule = UniqueNotes(tokenizer)
    unique = generate(model, content, mel, unique_notes=rule, **kwargs)
    assert generate(model, content, mel, unique_notes=rule, use_cache=False, **kwargs) == unique
    assert repeats(unique)[0] == 0 and repeats(unique)[1] > 5
    assert repeats(generate(model, content, mel, **kwargs))[0] > 5  # without the rule this model repeats


def test_a_unique_notes_mask_that_leaves_nothing_is_lifted_for_that_row():
    """A loop that went through every pitch at one onset leaves no Pitch to write: the rule steps aside
    for that row rather than let an impossible token through (the grammar still holds)."""
    class BanEverything:  # a state whose mask forbids every token
        def bind(self, batch_size, max_tokens, device):
            return self

        def mask(self, last_token):
            return torch.full((len(last_token), V), float("-inf"))

        def update(self, token):
            pass

        def reset(self):
            pass

        def tensors(self):
            return []

    model, (content, mel), grammar = make_model(), inputs(), make_grammar()
    kwargs = dict(max_new_tokens=30, temperature=0, grammar=grammar, bar_ids=[BAR], max_bars=2)
    rows = generate(model, content, mel, unique_notes=BanEverything(), **kwargs)
    assert rows == generate(model, content, mel, **kwargs)
    assert all(accepts(grammar, row) for row in rows)
