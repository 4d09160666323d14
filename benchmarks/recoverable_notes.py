"""How much of each StyleBench target can be known from the content at all: an upper bound on note F1.

A system that reads only the content (a model, or the "rule" baseline) cannot know a target note whose
pitch class sounds nowhere near it in the content: where the content is an accompaniment style
(waltz, alberti, arpeggio, stride, bossa, shuffle), the window's inner voices were replaced by chord
patterns, and a straight, swing or staccato target asks for exactly those voices back.

For every test triplet, a target note counts as *carried* if a content note of the same pitch class
(any octave: the register is the style's rule) sounds within a beat of its onset. A system that wrote
exactly the carried notes and nothing else would score precision 1 and recall r (the carried share),
so note F1 <= 2r / (1 + r) for that triplet; the bound of a split is the mean over its triplets, as
``mstoolkit bench`` averages note F1. The bound is generous (pitch class, a beat, perfect precision):
a real content-only system scores below it.

    PYTHONPATH=. python benchmarks/recoverable_notes.py --manifest data_samples/stylebench/test_split_v1.json
"""
from __future__ import annotations

import argparse
import collections

import numpy as np
from tqdm import tqdm

from mstoolkit.data import load_test_split
from mstoolkit.piece import TICKS_PER_QUARTER, Piece

FULL_VOICE = ("straight", "swing", "staccato")  # styles that keep every voice of the window


def carried_share(content: Piece, target: Piece, tolerance: int = TICKS_PER_QUARTER, octaves: bool = True) -> float:
    """Share of ``target``'s pitched notes whose pitch class (``octaves=False``: exact pitch) sounds in
    ``content`` within ``tolerance`` ticks of their onset (1.0 for a target without notes)."""
    notes = [n for n in content.notes if not n.is_drum]
    starts = np.array([n.start for n in notes])
    ends = np.array([n.start + n.duration for n in notes])
    modulus = 12 if octaves else 128
    classes = np.array([n.pitch % modulus for n in notes])
    wanted = [n for n in target.notes if not n.is_drum]
    if not wanted:
        return 1.0
    hits = 0
    for n in wanted:
        near = (starts <= n.start + tolerance) & (ends > n.start - tolerance)  # sounds within a beat
        hits += bool(np.any(classes[near] == n.pitch % modulus))
    return hits / len(wanted)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", default="data_samples/stylebench/test_split_v1.json",
                        help="a saved StyleBench split (default: the v1 test split)")
    parser.add_argument("--limit", type=int, help="only the first N triplets")
    args = parser.parse_args(argv)

    bench = load_test_split(args.manifest)
    triplets = bench.triplets["test"][: args.limit]
    by_target, by_kind = collections.defaultdict(list), collections.defaultdict(list)
    bounds = []
    for t in tqdm(triplets, desc="triplets"):
        r = carried_share(bench.content(t), bench.target(t))
        exact = carried_share(bench.content(t), bench.target(t), octaves=False)
        bound = 2 * r / (1 + r)
        bounds.append(bound)
        by_target[t.style_b].append((exact, r, bound))
        kind = lambda style: "full-voice" if style in FULL_VOICE else "accompaniment"  # noqa: E731
        by_kind[f"{kind(t.style_a)} -> {kind(t.style_b)}"].append((exact, r, bound))

    def rows(groups: dict, label: str) -> None:
        print(f"\n| {label} | triplets | same pitch in the content | same pitch class | note F1 bound |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, values in groups.items():
            exact, r, b = np.mean(values, axis=0)
            print(f"| {name} | {len(values)} | {exact:.3f} | {r:.3f} | {b:.3f} |")

    rows(dict(sorted(by_kind.items())), "source kind -> target kind")
    rows({s: by_target[s] for s in bench.styles if s in by_target}, "target style")
    print(f"\nall {len(bounds)} triplets: note F1 bound {np.mean(bounds):.3f}")


if __name__ == "__main__":
    main()
