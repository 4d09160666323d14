"""Shared fixtures: the sample MIDI files of ``data_samples/`` and small hand-made pieces.

``sample_path`` and ``hand_piece`` are parametrized (ids: the file stem / the piece's name), so a
test that takes one of them runs once per file / piece.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mstoolkit.piece import Note, Piece, TempoChange, TimeSignature, sample_paths

SAMPLE_PATHS: dict[str, Path] = sample_paths()


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Test models are tiny: one thread is faster, and far faster on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _triplets() -> Piece:
    """Eighth-note triplets (4 ticks) and quarter-note triplets (8 ticks) over a held bass, 4/4."""
    melody = [Note(4 * i, 4, 72 + i % 5, 90) for i in range(12)]  # bar 1: 12 triplet eighths
    melody += [Note(48 + 8 * i, 8, 67 + i, 70) for i in range(6)]  # bar 2: 6 triplet quarters
    bass = [Note(0, 48, 48, 60), Note(48, 48, 43, 60)]
    return Piece(melody + bass, [TempoChange(0, 100.0)], key="C major", name="triplets")


def _swing() -> Piece:
    """Swung eighths (long 8 + short 4 ticks) on a saxophone over a walking bass, key Bb major."""
    sax = [Note(12 * i + (0 if j == 0 else 8), 8 if j == 0 else 4, 70 + (i + j) % 7, 96 - 20 * j, program=65)
           for i in range(8) for j in range(2)]
    bass = [Note(12 * i, 12, 46 + 2 * (i % 4), 85, program=32) for i in range(8)]
    return Piece(sax + bass, [TempoChange(0, 140.0)], key="Bb major", name="swing")


def _waltz() -> Piece:
    """3/4 oom-pah-pah in a minor: bass on beat 1, chord on beats 2 and 3."""
    notes = []
    for bar in range(4):
        start = 36 * bar
        notes.append(Note(start, 12, 45 if bar % 2 == 0 else 40, 90))
        for beat in (1, 2):
            notes += [Note(start + 12 * beat, 10, p, 60) for p in (57, 60, 64)]
    return Piece(notes, [TempoChange(0, 160.0)], [TimeSignature(0, 3, 4)], key="a minor", name="waltz 3/4")


def _six_eight() -> Piece:
    """6/8 jig: dotted-quarter bass, running eighths (6 ticks) on a flute."""
    notes = [Note(6 * i, 6, 74 + (i * 3) % 8, 80, program=73) for i in range(24)]
    notes += [Note(18 * i, 18, 50 + (i % 2) * 7, 70, program=42) for i in range(8)]
    return Piece(notes, [TempoChange(0, 90.0)], [TimeSignature(0, 6, 8)], key="D major", name="jig 6/8")


def _seven_eight() -> Piece:
    """7/8 grouped 2+2+3 eighths, key f# minor."""
    notes = []
    for bar in range(3):
        start = 42 * bar
        for offset, length in ((0, 12), (12, 12), (24, 18)):
            notes.append(Note(start + offset, length, 66 + offset // 12, 100 if offset == 0 else 70))
    return Piece(notes, [TempoChange(0, 120.0)], [TimeSignature(0, 7, 8)], key="f# minor", name="7/8")


def _meter_and_tempo_changes() -> Piece:
    """Two bars of 4/4, two of 3/4 (from tick 96), one of 6/8 (from tick 168); three tempi."""
    notes = [Note(12 * i, 12, 60 + i % 12, 80) for i in range(8)]  # 4/4: ticks 0-96
    notes += [Note(96 + 12 * i, 12, 67 - i, 80) for i in range(6)]  # 3/4: ticks 96-168
    notes += [Note(168 + 6 * i, 6, 72 + i, 80) for i in range(6)]  # 6/8: ticks 168-204
    tempos = [TempoChange(0, 120.0), TempoChange(96, 90.5), TempoChange(168, 132.125)]
    sigs = [TimeSignature(0, 4, 4), TimeSignature(96, 3, 4), TimeSignature(168, 6, 8)]
    return Piece(notes, tempos, sigs, name="meter changes")


def _drums_and_programs() -> Piece:
    """A drum kit (channel 10) with piano chords, a guitar line and strings; varied velocities."""
    drums = [Note(6 * i, 3, 42, 50 + 5 * (i % 4), is_drum=True) for i in range(16)]  # closed hi-hat
    drums += [Note(24 * i, 6, 36 if i % 2 == 0 else 38, 110, is_drum=True) for i in range(4)]  # kick, snare
    piano = [Note(24 * i, 24, p, 64) for i in range(4) for p in (60, 64, 67)]
    guitar = [Note(3 * i, 3, 52 + i % 6, 90, program=25) for i in range(32)]  # sixteenths
    strings = [Note(0, 96, 48, 40, program=48), Note(0, 48, 55, 40, program=48)]
    return Piece(drums + piano + guitar + strings, [TempoChange(0, 104.0)], name="drums and programs")


HAND_PIECES: dict[str, Piece] = {
    piece.name: piece
    for piece in (_triplets(), _swing(), _waltz(), _six_eight(), _seven_eight(),
                  _meter_and_tempo_changes(), _drums_and_programs())
}


@pytest.fixture(params=sorted(SAMPLE_PATHS), ids=str)
def sample_path(request) -> Path:
    """Each MIDI file of data_samples/ in turn."""
    return SAMPLE_PATHS[request.param]


@pytest.fixture(params=sorted(HAND_PIECES), ids=str)
def hand_piece(request) -> Piece:
    """Each hand-made piece in turn: triplets, swing, 3/4, 6/8, 7/8, metre/tempo changes, drums."""
    return HAND_PIECES[request.param]


@pytest.fixture(scope="session")
def chorale() -> Piece:
    """bwv66.6 (4/4, f# minor, 96 bpm) read from data_samples/."""
    return Piece.from_midi(SAMPLE_PATHS["bwv66.6"])
