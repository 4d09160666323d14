"""Regenerate the sample MIDI files of this folder from music21's bundled corpus.

Each score is read with ``Piece.from_music21`` (repeats written out, ties merged, pickup bars
padded so bar lines fall where the score has them, parts without a MIDI program on program 0)
and written with ``Piece.save_midi``; the output is byte-for-byte reproducible.

    python data_samples/make_samples.py
"""
from __future__ import annotations

from pathlib import Path

#: sample name -> music21 corpus path; all by J. S. Bach (1685-1750)
SAMPLES = {
    "bwv66.6": "bach/bwv66.6",  # 4/4, f# minor, pickup, metronome mark 96
    "bwv269": "bach/bwv269",  # 3/4, G major
    "bwv304": "bach/bwv304",  # 4/4 then 3/4 from bar 9
    "bwv347": "bach/bwv347",  # 4/4, A major
    "bwv438": "bach/bwv438",  # 4/4, F major
    "bwv248.23-2": "bach/bwv248.23-2",  # 12/8, eight parts (winds, voices, organ)
}


def main(folder: Path = Path(__file__).resolve().parent) -> None:
    from music21 import corpus

    from mstoolkit.piece import Piece

    for name, corpus_path in SAMPLES.items():
        piece = Piece.from_music21(corpus.parse(corpus_path), name=name)
        path = piece.save_midi(folder / f"{name}.mid")
        print(f"{path.name}: {len(piece)} notes, {piece.duration_seconds:.0f} s, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
