"""Intake of real-world MIDI: drums kept and laid back, every pitched track in the content, expressive
timing detected and re-gridded on estimated beats, pickups / odd meters / tempo changes windowed on
their bar lines, long pieces generated in bounded batches, bad input named. No trained model: an
identity "model" (the content's own ids) or the tiny random debug model."""
from __future__ import annotations

import dataclasses
import io
from collections import defaultdict

import numpy as np
import pretty_midi
import pytest
import torch

from mstoolkit import generate as generate_module
from mstoolkit.config import UserError
from mstoolkit.generate import prepare_content, transfer
from mstoolkit.intake import GRID_FIT_THRESHOLD, Intake, find_pickup, grid_fit, intake, metric_fit
from mstoolkit.model import ModelConfig, MusicStyleTransformer
from mstoolkit.piece import MidiError, Note, Piece, TempoChange, TimeSignature, load_piece, sample_paths
from mstoolkit.tokenizer import RemiTokenizer

TOKENIZER = RemiTokenizer()


@pytest.fixture(scope="module")
def model() -> MusicStyleTransformer:
    torch.manual_seed(0)
    config = ModelConfig.preset("debug", vocab_size=TOKENIZER.vocab_size, **ModelConfig.beat_grid_from(TOKENIZER))
    return MusicStyleTransformer(config).eval()


@pytest.fixture
def mel(model) -> np.ndarray:
    return np.random.default_rng(0).uniform(-80, 0, (model.config.n_mels, 32)).astype(np.float32)


def identity_generate(monkeypatch) -> list[int]:
    """Make transfer's decoding return each window's content ids (an identity model); returns the list
    of batch sizes it was called with."""
    calls = []

    def fake(model, content_ids, style_mel, **kwargs):
        calls.append(len(content_ids))
        return [[t for t in row if t != TOKENIZER.pad_id] for row in content_ids.tolist()]

    monkeypatch.setattr(generate_module, "generate", fake)
    return calls


# ------------------------------------------------------------------------------ files made here
def band_midi(bars: int = 4) -> bytes:
    """A pop band: drums (kit 25 on channel 10), bass, piano chords and a guitar line, 120 bpm, 4/4."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    drums = pretty_midi.Instrument(25, is_drum=True, name="Kit")
    bass, piano = pretty_midi.Instrument(33, name="Bass"), pretty_midi.Instrument(0, name="Keys")
    guitar = pretty_midi.Instrument(25, name="Gtr")
    q = 0.5  # seconds per quarter
    for bar in range(bars):
        t0 = bar * 4 * q
        for e in range(8):
            drums.notes.append(pretty_midi.Note(70, 42, t0 + e * q / 2, t0 + e * q / 2 + 0.1))
        for b in (0, 2):
            drums.notes.append(pretty_midi.Note(100, 36, t0 + b * q, t0 + b * q + 0.1))
            drums.notes.append(pretty_midi.Note(90, 38, t0 + (b + 1) * q, t0 + (b + 1) * q + 0.1))
        bass.notes += [pretty_midi.Note(90, 28 + bar % 3, t0 + b * q, t0 + (b + 1) * q) for b in range(4)]
        piano.notes += [pretty_midi.Note(70, p, t0, t0 + 4 * q) for p in (60, 64, 67)]
        guitar.notes += [pretty_midi.Note(80, 72 + (i * 5) % 7, t0 + i * q / 2, t0 + (i + 1) * q / 2) for i in range(8)]
    pm.instruments = [drums, bass, piano, guitar]
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def humanised_midi(piece: Piece, seed: int = 0, drift: float = 0.08, jitter: float = 0.022) -> tuple[bytes, float]:
    """``piece`` played as a recorded performance: its quarters turned into seconds under a tempo that
    drifts +-``drift`` around a base tempo, onsets jittered by ``jitter`` s, written at a fixed 120 bpm
    header. Returns (MIDI bytes, base bpm)."""
    rng = np.random.default_rng(seed)
    first = min(n.start for n in piece.notes)
    base = 92.0
    qs = np.linspace(0, (piece.end_tick - first) / 12 + 1, 2000)  # (2000,) quarters
    curve = 0.6 * np.sin(2 * np.pi * qs / 24) + 0.4 * np.sin(2 * np.pi * qs / 9 + 1.0)
    bpm = base * (1 + drift * curve / np.abs(curve).max())  # (2000,)
    seconds = np.concatenate([[0], np.cumsum(np.diff(qs) * 60 / bpm[:-1])]) + 0.4  # (2000,)
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0)
    for n in piece.notes:
        start = np.interp((n.start - first) / 12, qs, seconds) + np.clip(rng.normal(0, jitter), -0.05, 0.05)
        end = max(start + 0.05, np.interp((n.end - first) / 12, qs, seconds) - 0.03)
        inst.notes.append(pretty_midi.Note(int(np.clip(n.velocity + rng.normal(0, 8), 30, 127)), n.pitch, start, end))
    pm.instruments = [inst]
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue(), base


def onset_differences(score: Piece, estimate: Piece) -> np.ndarray:
    """Estimated minus score onset (ticks) of every note matched per pitch, in time order. (matched,)"""
    ours, theirs = defaultdict(list), defaultdict(list)
    for n in score.notes:
        ours[n.pitch].append(n.start)
    for n in estimate.notes:
        theirs[n.pitch].append(n.start)
    return np.concatenate([np.array(theirs[p][:len(ours[p])]) - np.array(ours[p][:len(theirs[p])])
                           for p in ours if p in theirs])


def onsets_recovered(score: Piece, estimate: Piece) -> float:
    """The fraction of the score's notes whose estimated onset lands on the same 16th (within one tick),
    at the best whole-beat alignment (notes matched per pitch, in time order)."""
    diffs = onset_differences(score, estimate)  # (matched notes,)
    return max(float(np.mean(np.abs(diffs - shift) <= 1)) for shift in range(-96, 97, 12)) * len(diffs) / len(score.notes)


# ------------------------------------------------------------------------------ multi-track
def test_drums_are_kept_aside_and_every_pitched_track_is_content():
    took = intake(band_midi(), name="band")
    assert took.account == ("4 tracks (drums, bass, piano, guitar): drums kept unchanged, bass, piano and guitar "
                            "transferred; tempo map from the file (120 bpm, 4/4)")
    file_piece = load_piece(band_midi())
    pitched = [n for n in file_piece.notes if not n.is_drum]
    assert took.piece.notes == pitched  # every pitched note, bass included, as read
    assert took.drums.notes == [n for n in file_piece.notes if n.is_drum]
    assert {n.program for n in took.drums.notes} == {25}  # the kit stays
    assert [(t["name"], t["family"], t["role"]) for t in took.details["tracks"]] == [
        ("Kit", "drums", "kept"), ("Bass", "bass", "transferred"), ("Keys", "piano", "transferred"),
        ("Gtr", "guitar", "transferred")]
    assert str(took) == took.account and took.details["timing"] == "file" and took.details["grid_fit"] == 1.0


def test_drums_come_back_unchanged_over_the_transferred_output(model, mel):
    took = intake(band_midi())
    out = transfer(model, TOKENIZER, took, mel, max_new_tokens=40)
    assert sorted(n for n in out.notes if n.is_drum) == took.drums.notes  # only the file's drums, unchanged
    assert out.validate() is out
    midi = pretty_midi.PrettyMIDI(io.BytesIO(out.to_midi_bytes()))
    drum_tracks = [inst for inst in midi.instruments if inst.is_drum]
    assert len(drum_tracks) == 1 and drum_tracks[0].program == 25  # channel 10, the file's kit
    # transfer runs intake itself on a path / bytes, with the same result
    again = transfer(model, TOKENIZER, band_midi(), mel, max_new_tokens=40)
    assert again.notes == out.notes


def test_drums_can_go_to_the_model_and_unusual_instruments_stay_in_the_content():
    notes = [Note(12 * i, 12, 60 + i, program=p) for i, p in enumerate((114, 120, 0, 33))]  # steel drums, FX ...
    notes += [Note(12 * i, 3, 36, is_drum=True) for i in range(4)]
    took = intake(Piece(notes), drums="transfer")
    assert took.drums is None and took.piece.notes == Piece(notes).notes
    assert "drums, " in took.account and "kept" not in took.account
    kept = intake(Piece(notes))
    assert [n.program for n in kept.piece.notes] == [114, 120, 0, 33]  # never dropped
    straight = prepare_content(TOKENIZER, kept)
    assert len(straight.notes) == 4 and not any(n.is_drum for n in straight.notes)


# ------------------------------------------------------------------------------ expressive timing
def test_grid_fit_tells_a_score_from_a_performance():
    score = load_piece(sample_paths()["bwv66.6"])
    performance, _ = humanised_midi(score)
    clean = intake(sample_paths()["bwv66.6"])
    played = intake(performance, name="played")
    assert clean.details["timing"] == "file" and clean.details["grid_fit"] == 1.0
    assert played.details["timing"] == "estimate" and played.details["grid_fit"] < 0.6 < GRID_FIT_THRESHOLD
    # a constant offset is not expressive timing; a DAW's light humanize (+-5 ms at 120 bpm) still fits
    assert grid_fit(np.arange(40) / 4 + 0.07) == 1.0
    nudged = np.arange(40) / 4 + np.random.default_rng(0).uniform(-0.02, 0.02, 40)
    assert grid_fit(nudged) >= GRID_FIT_THRESHOLD
    assert intake(performance, timing="file").details["timing"] == "file"  # the user decides


def test_estimated_beats_recover_the_score_onsets():
    score = load_piece(sample_paths()["bwv66.6"])
    performance, base = humanised_midi(score)
    took = intake(performance, name="played")
    beats = took.details["beats"]
    assert took.account.startswith("1 piano track transferred; expressive timing (grid fit 0.")
    assert "beats estimated (librosa beat tracker, " in took.account and took.account.endswith("quantized to 16ths")
    assert abs(beats["bpm"] / base - 1) < 0.05 and 0.08 < beats["drift"] < 0.3  # it drifts +-8 %
    assert onsets_recovered(score, took.piece) >= 0.9
    assert all(n.start % 3 == 0 for n in took.piece.notes)  # on 16ths
    assert len(took.piece.tempos) > 3  # a tempo per bar, following the drift
    assert took.piece.validate() is took.piece


def test_estimation_needs_enough_notes_and_a_piece_can_be_re_timed_too():
    few = Piece([Note(12 * i + 1, 5, 60) for i in range(4)], name="few")
    with pytest.raises(UserError, match="few: too few notes to estimate beats"):
        intake(few, timing="estimate")
    assert intake(few).details["timing"] == "file"  # on a grid (shifted by a tick)
    grid = Piece([Note(6 * i, 6, 60 + i % 12, 60 + 30 * (i % 2 == 0)) for i in range(64)])  # 120 bpm eighths
    again = intake(grid, timing="estimate")
    assert again.details["beats"]["bpm"] == pytest.approx(120, rel=0.03)
    assert onsets_recovered(grid, again.piece) >= 0.9


# ------------------------------------------------------------------------------ bar lines
def _bars_piece(sigs: list[TimeSignature], tempos: list[TempoChange], n_bars: int, lead_rest: int = 0) -> Piece:
    """Notes on every eighth of ``n_bars`` bars under ``sigs``, after ``lead_rest`` silent ticks."""
    probe = Piece([Note(0, 1, 60)], tempos, sigs)
    starts = probe.bar_starts(10_000)[: n_bars + 1]
    notes = [Note(t, 6, 60 + (t // 6) % 12, 80 if t in starts else 60) for t in range(lead_rest, starts[-1], 6)]
    return Piece(notes, tempos, sigs, name="bars")


BAR_CASES = {
    "pickup bar 1/4": ([TimeSignature(0, 1, 4), TimeSignature(12, 4, 4)], [TempoChange(0, 100.0)], 0),
    "pickup as a leading rest": ([TimeSignature(0, 4, 4)], [TempoChange(0, 100.0)], 36),
    "5/4": ([TimeSignature(0, 5, 4)], [TempoChange(0, 132.0)], 0),
    "7/8": ([TimeSignature(0, 7, 8)], [TempoChange(0, 150.0)], 0),
    "meter and tempo changes": ([TimeSignature(0, 4, 4), TimeSignature(96, 7, 8), TimeSignature(180, 3, 4)],
                                [TempoChange(0, 97.0), TempoChange(96, 72.5), TempoChange(200, 140.0)], 0),
}


@pytest.mark.parametrize("case", BAR_CASES, ids=list(BAR_CASES))
def test_windows_fall_on_the_real_bar_lines(case, model, mel, monkeypatch):
    sigs, tempos, lead = BAR_CASES[case]
    content = _bars_piece(sigs, tempos, 7, lead)
    took = intake(content.to_midi_bytes(), name="bars")
    assert took.details["timing"] == "file" and took.piece.time_signatures == content.time_signatures
    assert took.account.endswith(" -> ".join(dict.fromkeys(f"{ts.numerator}/{ts.denominator}" for ts in sigs)) + ")")
    identity_generate(monkeypatch)
    out = transfer(model, TOKENIZER, took, mel, window_bars=2, content_style=None)
    # An identity model gives the content back only if every window starts on a bar line of the content.
    assert out.notes == TOKENIZER.quantize(content).notes
    assert out.time_signatures == content.time_signatures
    assert out.tempos == content.tempos  # as read: 97 and 72.5 bpm are not rounded to the tokenizer's bins


def test_a_music21_pickup_is_padded_and_windowed_on_its_bar_lines(model, mel, monkeypatch):
    from music21 import meter, note, stream

    part = stream.Part()
    pickup = stream.Measure(number=0)
    pickup.append([meter.TimeSignature("4/4"), note.Note("G4", quarterLength=1)])
    pickup.paddingLeft = 3.0  # a one-beat pickup: the first bar line comes after it
    part.append(pickup)
    for bar, pitches in enumerate((["C5", "D5", "E5", "F5"], ["G5", "E5", "C5", "D5"], ["C5"])):
        part.append(stream.Measure([note.Note(p, quarterLength=4 / len(pitches)) for p in pitches], number=bar + 1))
    score = stream.Score([part])
    took = intake(score, name="pickup")
    assert took.details["timing"] == "score" and took.piece.notes[0].start == 36
    identity_generate(monkeypatch)
    out = transfer(model, TOKENIZER, took, mel, window_bars=1, content_style=None)
    assert out.notes == TOKENIZER.quantize(took.piece).notes


@pytest.mark.parametrize("sample", ["bwv66.6", "bwv347", "bwv269"])
def test_a_file_that_opens_on_its_pickup_gets_its_bar_lines_back(sample, model, mel, monkeypatch):
    # The shipped sample pads its pickup with a leading rest (its bar lines are right); written the way
    # most files are, the pickup at tick 0, every bar line of the file is a beat or more off.
    score = load_piece(sample_paths()[sample])
    lead = min(n.start for n in score.notes)  # 36 = a one-beat pickup in 4/4, 24 in 3/4
    filed = score.replace(notes=[dataclasses.replace(n, start=n.start - lead) for n in score.notes])
    took = intake(filed.to_midi_bytes(), name=sample)
    assert took.details["bar_lines"] == {"method": "metric fit", "lead_ticks": lead,
                                         "pickup_beats": (score.time_signatures[0].bar_ticks - lead) // 12}
    assert took.piece.notes == score.notes
    assert took.account.endswith(f"pickup, padded with a {lead // 12}-beat rest")
    # A file whose bar lines are right keeps them, and downbeat="file" trusts any file's bar lines.
    assert intake(score.to_midi_bytes()).details["bar_lines"]["lead_ticks"] == 0
    assert intake(filed.to_midi_bytes(), downbeat="file").piece.notes == filed.notes
    identity_generate(monkeypatch)  # windowed on the real bar lines: as if the file had them right
    out = transfer(model, TOKENIZER, took, mel, window_bars=1, content_style=None)
    assert out.notes == transfer(model, TOKENIZER, score.to_midi_bytes(), mel, window_bars=1, content_style=None).notes


def test_the_metric_fit_prefers_bar_lines_before_long_notes_and_new_chords():
    # A bass that changes and holds a half note on beats 1 and 3, quarter-note chords on 2 and 4, in a
    # file that opens on the one-beat pickup chord at tick 0: the music's bar lines fall at 12, 60, ...
    pickup = [Note(0, 12, 64), Note(0, 12, 67)]
    notes = pickup + [Note(12 + bar * 48 + b * 12, 24 if b % 2 == 0 else 12,
                           (36 + 5 * bar) % 48 + 24 if b % 2 == 0 else 64 + bar % 3)
                      for bar in range(9) for b in range(4)]
    piece = Piece(notes, [TempoChange(0, 100.0)], [TimeSignature(0, 4, 4)])
    scores = {k: metric_fit(notes, 48, k)["score"] for k in (0, 12, 36)}
    assert max(scores, key=scores.get) == 36 == find_pickup(piece)  # 12 + 36 = one bar: on the bar lines
    assert metric_fit(notes, 48, 36)["ties"] == 0 > metric_fit(notes, 48, 0)["ties"]  # half notes across bar lines
    # A file that starts after a rest has placed its notes; half a bar is never taken (beats 1 and 3
    # look alike); 6/8 and files with meter changes keep their bar lines.
    assert find_pickup(piece.replace(notes=[dataclasses.replace(n, start=n.start + 12) for n in notes])) == 0
    half = piece.replace(notes=[dataclasses.replace(n, start=n.start - 12) for n in notes if n.start >= 12])
    assert find_pickup(half) != 24
    assert find_pickup(piece.replace(time_signatures=[TimeSignature(0, 6, 8)])) == 0
    assert find_pickup(piece.replace(time_signatures=[TimeSignature(0, 4, 4), TimeSignature(96, 3, 4)])) == 0
    with pytest.raises(UserError, match="downbeat must be"):
        intake(piece, downbeat="beat 1")


# ------------------------------------------------------------------------------ long pieces
def test_long_pieces_are_generated_in_bounded_batches_with_the_same_greedy_result(model, mel, monkeypatch, capsys):
    content = _bars_piece([TimeSignature(0, 4, 4)], [TempoChange(0, 120.0)], 9)
    one = transfer(model, TOKENIZER, content, mel, window_bars=1, temperature=0, max_new_tokens=30, batch_windows=16)
    for size in (4, 1):
        split = transfer(model, TOKENIZER, content, mel, window_bars=1, temperature=0, max_new_tokens=30,
                         batch_windows=size, progress=size == 4)
        assert split.notes == one.notes and split.tempos == one.tempos
    err = capsys.readouterr().err
    assert "transfer: 100%" in err and "9/9" in err  # the progress bar, when asked for
    calls = identity_generate(monkeypatch)
    transfer(model, TOKENIZER, content, mel, window_bars=1, batch_windows=4)
    assert calls == [4, 4, 1]  # at most batch_windows windows at a time
    with pytest.raises(UserError, match="batch_windows"):
        transfer(model, TOKENIZER, content, mel, batch_windows=0)


# ------------------------------------------------------------------------------ bad input
def test_bad_input_is_named_with_its_reason(tmp_path):
    garbage = tmp_path / "song.mid"
    garbage.write_bytes(b"not midi at all")
    with pytest.raises(MidiError, match="song.mid: not a MIDI file"):
        intake(garbage)
    with pytest.raises(MidiError, match="missing.mid: cannot read the file"):
        intake(tmp_path / "missing.mid")
    drums_only = tmp_path / "beat.mid"
    Piece([Note(6 * i, 3, 36 + i % 3, is_drum=True) for i in range(16)]).save_midi(drums_only)
    with pytest.raises(UserError, match=r"beat.mid: has only drum notes .* drums='transfer'"):
        intake(drums_only)
    assert intake(drums_only, drums="transfer").piece.notes  # the user may give the model the drums
    with pytest.raises(UserError, match="timing must be"):
        intake(drums_only, timing="swing")
    with pytest.raises(UserError, match="drums must be"):
        intake(drums_only, drums="drop")
    with pytest.raises(TypeError, match="cannot load a dict"):
        intake({"notes": []})


def test_an_intake_is_taken_as_is():
    took = intake(band_midi())
    assert intake(took) is took and isinstance(took, Intake)
    assert took.with_drums(took.piece, until=96).notes == sorted(
        took.piece.notes + [n for n in took.drums.notes if n.start < 96])
