"""Does ``intake`` put the bar lines of a file on its own grid where the music says? A table.

Most MIDI files of a piece that opens on a pickup (an anacrusis) start the pickup at tick 0, so every bar
line of the file is off by the pickup's length; the bar-line fit (``mstoolkit.intake.find_pickup``) pads
such a pickup with a leading rest. Measured on music21's Bach chorales in 3/4 and 4/4 (one time
signature, a pickup of whole beats), each written three ways:

- *opens on its pickup at tick 0*: the chorale's notes moved so that its first note starts at tick 0
  (a chorale without a pickup is not in this row); right = the fit pads the pickup back;
- *opens on a downbeat at tick 0*: a chorale without a pickup; right = bar lines kept;
- *pickup padded with a rest*: the chorale as StyleBench reads it (music21 pads the pickup bar); right =
  bar lines kept.

The cues, their weights and the one-beat prior were chosen on the **train** split; the val and test
splits (``mstoolkit.data.split_of``) are the held-out measurement. "Bar lines as the file has them" is
the baseline: right for every file but the ones that open on their pickup.

``--performances`` adds the same question for performances played without a click (beats estimated,
``timing="estimate"``): the 6 shipped samples and the 29 test-split chorales, each played by the tests'
``humanised_midi`` (tempo drifting +-8 %, onsets jittered 22 ms, a 120 bpm header; seed = its index).
Right = the estimate's notes sit on the score's notes at a whole number of bars (the best alignment of
the two, counted over notes matched by pitch in time order).

    PYTHONPATH=. python benchmarks/pickup_detection.py --performances
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import sys
from pathlib import Path

import numpy as np

from mstoolkit.data import music21_corpus, split_of
from mstoolkit.intake import find_pickup, intake
from mstoolkit.piece import TICKS_PER_QUARTER as Q
from mstoolkit.piece import Piece, load_piece, sample_paths

ROWS = ("opens on its pickup at tick 0", "opens on a downbeat at tick 0", "pickup padded with a rest")


def cases(piece: Piece) -> list[tuple[str, Piece, int]]:
    """(row, file, the lead-in the fit should find) for one chorale, [] if it is not measured."""
    if len(piece.time_signatures) != 1 or piece.time_signatures[0].bar_ticks not in (3 * Q, 4 * Q) \
            or piece.time_signatures[0].denominator != 4:
        return []
    pitched = piece.replace(notes=[n for n in piece.notes if not n.is_drum])
    first = min(n.start for n in pitched.notes)
    pad = first if first < pitched.time_signatures[0].bar_ticks else 0  # music21's padded pickup bar
    if pad % Q:
        return []
    if not pad:
        return [(ROWS[1], pitched, 0)]
    filed = pitched.replace(notes=[dataclasses.replace(n, start=n.start - pad) for n in pitched.notes])
    return [(ROWS[0], filed, pad), (ROWS[2], pitched, 0)]


def verdict(found: int, truth: int, bar: int) -> str:
    if found == truth:
        return "right"
    return "half a bar off" if bar == 4 * Q and (found - truth) % (2 * Q) == 0 else "a beat off"


def bar_offset(score: Piece, estimate: Piece) -> int:
    """Ticks by which ``estimate`` sits later than ``score`` at their best alignment (whole beats)."""
    from test_intake import onset_differences  # notes matched per pitch, in time order, as the tests do

    diffs = onset_differences(score, estimate)  # (matched notes,)
    return max(range(-10 * 4 * Q, 10 * 4 * Q + 1, Q), key=lambda shift: np.mean(np.abs(diffs - shift) <= 1))


def performances(pieces: list[Piece]) -> None:
    from test_intake import humanised_midi  # the performances the tests use

    right = []
    for i, piece in enumerate(pieces):
        took = intake(humanised_midi(piece, seed=i)[0], timing="estimate", name=piece.name)
        right.append(bar_offset(piece, took.piece) % took.piece.time_signatures[0].bar_ticks == 0)
    print(f"\nperformances (timing estimated): bar lines right on {sum(right)} of {len(right)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="bach/chorales", help="music21 corpus query (default bach/chorales)")
    parser.add_argument("--performances", action="store_true", help="also performances played without a click")
    args = parser.parse_args()
    counts: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    chorales = music21_corpus(args.corpus)
    for piece in chorales:
        held = "train" if split_of(piece.name) == "train" else "val + test"
        for row, filed, truth in cases(piece):
            bar = filed.time_signatures[0].bar_ticks
            counts[held, row][verdict(find_pickup(filed), truth, bar)] += 1
            counts[held, row]["baseline right"] += truth == 0
    print("| split | file | files | bar lines right | half a bar off | a beat off | right as the file has them |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for held in ("val + test", "train"):
        for row in ROWS:
            c = counts[held, row]
            n = c["right"] + c["half a bar off"] + c["a beat off"]
            print(f"| {held} | {row} | {n} | {c['right']} ({c['right'] / n:.0%}) | {c['half a bar off']} | "
                  f"{c['a beat off']} | {c['baseline right']} ({c['baseline right'] / n:.0%}) |")
    if args.performances:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        performances([load_piece(p) for p in sample_paths().values()]
                     + [p for p in chorales if split_of(p.name) == "test"])


if __name__ == "__main__":
    main()
