"""Tests for mstoolkit.augment (reference re-instrumentation, room and noise) and its use in training data."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

import librosa

from mstoolkit.augment import (HELD_OUT_PROGRAMS, TIMBRE_POOL, in_another_register, overtones_and_colour, room_and_noise,
                               with_timbre)
from mstoolkit.data import StyleBenchConfig, StyleBenchDataset, build_stylebench
from mstoolkit.piece import Note, Piece
from pieces import make_piece


def _band(piece: Piece) -> Piece:
    melody = [Note(12 * i, 12, 72 + i % 5, 90, program=65) for i in range(8)]
    chords = [Note(24 * i, 24, 48 + i % 3, 70, program=4) for i in range(4)]
    drums = [Note(12 * i, 6, 42, 80, program=0, is_drum=True) for i in range(8)]
    return piece.replace(notes=melody + chords + drums)


def test_with_timbre_redraws_pitched_programs_only_and_is_seeded():
    band = _band(Piece([]))
    seen = collections.Counter()
    for seed in range(200):
        out = with_timbre(band, seed)
        assert out == with_timbre(band, seed)  # same seed, same instruments
        assert [(n.start, n.pitch, n.duration, n.velocity, n.is_drum) for n in out.notes] == \
            [(n.start, n.pitch, n.duration, n.velocity, n.is_drum) for n in band.notes]
        assert all(n.program == 0 for n in out.notes if n.is_drum)  # the kit stays
        programs = {n.program for n in out.notes if not n.is_drum}
        assert programs <= set(TIMBRE_POOL)
        seen[len(programs)] += 1
    assert not set(HELD_OUT_PROGRAMS) & set(TIMBRE_POOL)  # the robustness test's instruments stay unheard
    assert seen[1] > 50 and seen[2] > 50  # both a solo instrument and a melody + accompaniment pair


def test_in_another_register_moves_pitched_notes_within_the_keys_and_is_seeded():
    band = _band(Piece([]))  # pitches 48-76 and a hi-hat
    shifts = collections.Counter()
    for seed in range(300):
        out = in_another_register(band, seed, max_semitones=12)
        assert out == in_another_register(band, seed, max_semitones=12)
        moved = {n.pitch - o.pitch for n, o in zip(out.notes, band.notes) if not n.is_drum}
        assert len(moved) == 1 and abs(next(iter(moved))) <= 12  # one interval for the whole piece
        assert [n.pitch for n in out.notes if n.is_drum] == [42] * 8  # the kit stays
        shifts[next(iter(moved))] += 1
    assert set(shifts) == set(range(-12, 13))  # every interval up to an octave, both ways
    high = band.replace(notes=[Note(0, 12, 100)])
    assert all(in_another_register(high, s, 12).notes[0].pitch <= 108 for s in range(50))  # stays on the keys
    assert in_another_register(band, 5, max_semitones=0) == band
    with pytest.raises(ValueError, match="max_semitones"):
        in_another_register(band, 5, max_semitones=-1)


def test_room_and_noise_keeps_shape_and_floor_and_only_adds_power():
    rng = np.random.default_rng(0)
    mel = torch.from_numpy(rng.uniform(-80, -10, (128, 300)).astype(np.float32))
    mel[:, 150:] = -80.0  # the second half silent: a reverberant tail and a noise floor must fill it
    for seed in range(20):
        out = room_and_noise(mel, torch.Generator().manual_seed(seed))
        assert out.shape == mel.shape and out.dtype == mel.dtype
        assert torch.all(out >= mel - 1e-3)  # a room and noise add power, never remove it
    g = torch.Generator().manual_seed(0)
    reverb = room_and_noise(mel, g, reverb_probability=1.0, noise_probability=0.0, rt60=(1.5, 1.5), tail_db=(0, 0))
    assert reverb[:, 150:155].mean() > -60 and torch.allclose(reverb[:, -1], mel[:, -1], atol=30)  # a decaying tail
    assert reverb[:, 150].mean() > reverb[:, 200].mean() > reverb[:, 299].mean() - 1e-3
    noisy = room_and_noise(mel, g, reverb_probability=0.0, noise_probability=1.0, snr_db=(20, 20))
    floor = noisy[:, 150:]
    assert float(floor.std()) < 1e-3 and float(floor.mean()) > -80  # a flat floor in the silence
    dry = room_and_noise(mel, g, reverb_probability=0.0, noise_probability=0.0)
    assert torch.allclose(dry, mel, atol=1e-3)


def _tone_mel(hz: float, n_mels: int = 128, sample_rate: int = 22050) -> tuple[torch.Tensor, np.ndarray]:
    """A log-mel (dB) with all its power in the band nearest ``hz`` (and the -80 dB floor elsewhere)."""
    centres = librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=sample_rate / 2)[1:-1]
    mel = torch.full((n_mels, 50), -80.0)
    mel[int(np.argmin(abs(centres - hz)))] = -20.0
    return mel, centres


def test_overtones_move_a_tones_power_to_its_harmonics_and_keep_the_clips_power():
    mel, centres = _tone_mel(440.0)
    g = torch.Generator().manual_seed(0)
    out = overtones_and_colour(mel, g, overtone_probability=1.0, colour_probability=0.0, fundamental=(0.1, 0.1),
                               harmonics=(2,))
    assert out.shape == mel.shape and out.dtype == mel.dtype
    loud = centres[out.mean(1) > -60]  # the bands that sound
    assert any(abs(f - 440) < 40 for f in loud) and any(abs(f - 880) < 60 for f in loud)  # fundamental and octave
    assert all(abs(f - 440) < 40 or abs(f - 880) < 60 for f in loud)  # nothing anywhere else
    power = lambda m: torch.pow(10.0, m.double() / 10).sum()  # noqa: E731
    assert torch.isclose(power(out), power(mel), rtol=1e-3)  # a timbre, not a level: same total power
    same = overtones_and_colour(mel, g, overtone_probability=0.0, colour_probability=0.0)
    assert torch.allclose(same, mel, atol=1e-3)


def test_colour_tilts_and_low_passes_without_moving_power_between_bands():
    rng = np.random.default_rng(0)
    mel = torch.from_numpy(rng.uniform(-60, -10, (128, 100)).astype(np.float32))
    _, centres = _tone_mel(440.0)
    for seed in range(20):
        out = overtones_and_colour(mel, torch.Generator().manual_seed(seed), overtone_probability=0.0,
                                   colour_probability=1.0)
        free = out > mel.min() + 1e-3  # (n_mels, frames) not held at the clip's floor
        loudest = mel.argmax(1, keepdim=True)  # (n_mels, 1) each band's loudest frame, the last to reach the floor
        gain = (out - mel).gather(1, loudest)[:, 0]  # (n_mels,) dB per band: one gain curve, the same in every frame
        assert torch.allclose((out - mel)[free], gain[:, None].expand_as(mel)[free], atol=1e-2)
        assert abs(float(gain[0])) < 0.1  # the tilt pivots on the lowest band
    dull = overtones_and_colour(mel, torch.Generator().manual_seed(1), overtone_probability=0.0, colour_probability=1.0,
                                tilt_db=(0.0, 0.0), low_pass_hz=(3000.0, 3000.0))
    cut = (dull - mel).mean(1)
    if float(cut.min()) < -1:  # the low-pass was drawn (half of the time): -3 dB at the cutoff, ~-24 dB an octave up
        assert abs(float(cut[int(np.argmin(abs(centres - 3000)))]) + 3) < 0.5
        assert float(cut[int(np.argmin(abs(centres - 6000)))]) < -20 and float(cut[int(np.argmin(abs(centres - 500)))]) > -0.1


def test_dataset_draws_re_instrumented_references_only_when_asked(tmp_path):
    cfg = StyleBenchConfig(corpus="tiny", styles=("straight", "swing"), window_bars=2, split_fractions=(0.5, 0.25, 0.25),
                           triplets_per_window=1, eval_triplets_per_window=1, max_eval_triplets=2)
    # these 8 names split 3 train / 3 val / 2 test with seed 0 (tests/test_data.py)
    bench = build_stylebench(cfg, tmp_path, pieces=[make_piece(f"piece{i:02d}", i) for i in range(8)], progress=False)
    t = bench.triplets["train"][0]
    plain = bench.reference_mel(t)
    other = bench.reference_mel(t, timbre=1)
    assert plain.shape[0] == other.shape[0] and not np.allclose(plain[:, :other.shape[1]], other[:, :plain.shape[1]])
    assert np.array_equal(other, bench.reference_mel(t, timbre=1))  # cached, the same on every call
    index = bench.triplets["train"].index(t)
    clean = StyleBenchDataset(bench, "train")
    mixed = StyleBenchDataset(bench, "train", reference_timbres=1)
    drawn = set()
    for seed in range(12):
        torch.manual_seed(seed)
        assert np.array_equal(clean[index]["reference_mel"].numpy(), plain)
        torch.manual_seed(seed)
        m = mixed[index]["reference_mel"].numpy()
        drawn.add("plain" if np.array_equal(m, plain) else "other" if np.array_equal(m, other) else "?")
    assert drawn == {"plain", "other"}
    with pytest.raises(ValueError, match="reference_timbres"):
        StyleBenchDataset(bench, "train", reference_timbres=-1)
    moved = bench.reference_mel(t, timbre=1, transpose=12)  # the same instruments, in another register
    assert moved.shape == other.shape and not np.allclose(moved, other)
    assert np.array_equal(bench.reference_mel(t, timbre=1, transpose=12), moved)
    with pytest.raises(ValueError, match="timbre"):
        bench.reference_mel(t, timbre=0, transpose=12)
    with pytest.raises(ValueError, match="reference_transpose"):
        StyleBenchDataset(bench, "train", reference_transpose=12)  # nothing redrawn to move
    shifted = StyleBenchDataset(bench, "train", reference_timbres=1, reference_transpose=12)
    drawn = set()
    for seed in range(12):
        torch.manual_seed(seed)
        m = shifted[index]["reference_mel"].numpy()
        drawn.add("plain" if np.array_equal(m, plain) else "moved" if np.array_equal(m, moved) else "?")
    assert drawn == {"plain", "moved"}
    coloured = StyleBenchDataset(bench, "train", reference_spectrum=True)
    mels = []
    for seed in range(8):
        torch.manual_seed(seed)
        mels.append(coloured[index]["reference_mel"])
        assert mels[-1].shape == plain.shape
    assert sum(not np.allclose(m.numpy(), plain, atol=1e-3) for m in mels) >= 4  # 3 of 4 draws change something
