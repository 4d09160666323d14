"""Round trip of every Bach chorale in music21's corpus through the REMI tokenizer.

For each chorale: music21 score -> ``Piece`` (snapped to the grid by ``load_piece``) -> ``encode``
-> ``decode``, compared with ``tokenizer.quantize(piece)`` (velocity and tempo on their bins):
notes (as a multiset), tempi and time signatures must be identical. Also counted: pieces that
``quantize`` leaves unchanged (already on the tokenizer's grid).

    python benchmarks/roundtrip_corpus.py            # all chorales (about 410 files, ~1-2 min on 2 cores)
    python benchmarks/roundtrip_corpus.py --smoke    # 5 chorales
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mstoolkit.piece import Piece, load_piece
from mstoolkit.tokenizer import RemiTokenizer


def chorale_paths() -> list[Path]:
    """Every Bach chorale file of music21's corpus: the ``bach/bwv*`` works except BWV 846 (a prelude),
    one file per work (MusicXML preferred over Humdrum)."""
    from music21 import corpus

    by_work: dict[str, Path] = {}
    for path in sorted(corpus.getComposer("bach"), key=lambda p: (p.stem, p.suffix != ".mxl")):
        if path.stem.startswith("bwv") and path.stem != "bwv846":
            by_work.setdefault(path.stem, path)
    return [by_work[stem] for stem in sorted(by_work)]


def differences(expected: Piece, got: Piece) -> str:
    """'' when notes (multiset), tempi and time signatures agree, else a short description."""
    problems = []
    missing = Counter(expected.notes) - Counter(got.notes)
    extra = Counter(got.notes) - Counter(expected.notes)
    if missing or extra:
        first = next(iter(missing or extra))
        problems.append(f"{sum(missing.values())} notes missing, {sum(extra.values())} extra (e.g. {first})")
    if expected.tempos != got.tempos:
        problems.append(f"tempi {expected.tempos[:3]} != {got.tempos[:3]}")
    if expected.time_signatures != got.time_signatures:
        problems.append(f"time signatures {expected.time_signatures[:3]} != {got.time_signatures[:3]}")
    return "; ".join(problems)


def snapped(piece: Piece, expected: Piece) -> tuple[str, ...]:
    """What ``quantize`` had to change: 'velocity', 'tempo', 'time signature', 'other notes'."""
    changed = []
    if [n.velocity for n in piece.notes] != [n.velocity for n in expected.notes]:
        changed.append("velocity")
    if piece.tempos != expected.tempos:
        changed.append("tempo")
    if piece.time_signatures != expected.time_signatures:
        changed.append("time signature")
    if [(n.start, n.duration, n.pitch) for n in piece.notes] != \
            [(n.start, n.duration, n.pitch) for n in expected.notes]:
        changed.append("other notes")
    return tuple(changed)


def check(path: Path) -> tuple[str, int, tuple[str, ...], str]:
    """(name, notes, what snapping changed, '' or the reason it failed)."""
    from music21 import converter

    tok = RemiTokenizer()
    try:
        piece = load_piece(converter.parse(path), name=path.stem)
        expected = tok.quantize(piece)
        decoded = tok.decode(tok.encode(piece))
    except Exception as err:  # report every failure, whatever it is
        return path.stem, 0, ("error",), f"{type(err).__name__}: {err}"
    return path.stem, len(piece), snapped(piece, expected), differences(expected, decoded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="only 5 chorales")
    parser.add_argument("--n", type=int, default=None, help="only the first N chorales")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (music21 parsing is the slow part)")
    args = parser.parse_args()
    paths = chorale_paths()[: 5 if args.smoke else args.n]
    began = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(check, paths, chunksize=4))
    failures = [(name, reason) for name, _, _, reason in results if reason]
    print(f"chorales: {len(results)}  notes: {sum(r[1] for r in results)}  "
          f"time: {time.perf_counter() - began:.1f} s ({args.jobs} processes)")
    on_grid = sum(not r[2] for r in results)
    print(f"already on the tokenizer grid (quantize changes nothing): {on_grid} / {len(results)}")
    for what, count in sorted(Counter(w for r in results for w in r[2]).items()):
        print(f"  snapped {what}: {count} pieces")
    print(f"exact round trip after snapping (notes, tempi, time signatures): "
          f"{len(results) - len(failures)} / {len(results)}")
    for name, reason in failures:
        print(f"  FAIL {name}: {reason}")


if __name__ == "__main__":
    main()
