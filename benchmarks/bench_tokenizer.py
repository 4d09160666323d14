"""Tokenizer speed: mstoolkit's RemiTokenizer beside MidiTok's REMI, same Bach chorale MIDI files, one run.

The chorales are exported once from music21's corpus with music21's own MIDI writer into a cache
folder (default ``~/.cache/mstoolkit/bench_chorales``). MidiTok is configured like ours: 12
positions per beat, durations up to 16 beats, 32 velocity bins, 40 log-spaced tempi in 24-240 bpm,
programs, tempo and time-signature tokens.

Rows (ms per file, best of ``--repeats`` passes over all files, the two tokenizers interleaved):

- ``encode (in memory)``: ours from a ``Piece``, MidiTok from a ``symusic.Score`` already parsed;
- ``MIDI bytes -> object``: ``load_piece(bytes)`` (symusic, mido fallback) vs ``symusic.Score.from_midi``;
- ``encode (from MIDI bytes)``: both of the above together, end to end;
- ``decode (to object)``: ids -> ``Piece`` vs ids -> ``symusic.Score``;
- ``decode (to MIDI bytes)``: plus writing MIDI (``to_midi_bytes`` vs ``dumps_midi``).

Tokens per minute of music count the tokens without BOS/EOS over the pieces' duration in seconds.

    python benchmarks/bench_tokenizer.py            # 120 chorales, 3 repeats
    python benchmarks/bench_tokenizer.py --smoke    # 5 chorales, 1 repeat
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

from mstoolkit.piece import load_piece
from mstoolkit.tokenizer import RemiTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from roundtrip_corpus import chorale_paths, differences  # noqa: E402

DEFAULT_CACHE = Path.home() / ".cache" / "mstoolkit" / "bench_chorales"


def export_chorales(n: int, cache: Path) -> list[Path]:
    """MIDI files of the first ``n`` chorales, written by music21 once and reused."""
    from music21 import converter

    cache.mkdir(parents=True, exist_ok=True)
    files = []
    for path in chorale_paths():
        if len(files) == n:
            break
        target = cache / f"{path.stem}.mid"
        if not target.exists():
            try:
                converter.parse(path).write("midi", fp=target)
            except Exception as err:  # a chorale music21 cannot write: skip it
                warnings.warn(f"skipping {path.stem}: {type(err).__name__}: {err}")
                continue
        files.append(target)
    return files


def miditok_remi():
    from miditok import REMI, TokenizerConfig

    return REMI(TokenizerConfig(
        pitch_range=(0, 127), beat_res={(0, 16): 12}, num_velocities=32, special_tokens=["PAD", "BOS", "EOS"],
        use_programs=True, use_tempos=True, num_tempos=40, tempo_range=(24, 240), log_tempos=True,
        use_time_signatures=True, time_signature_range={1: (1, 4), 2: (1, 8), 4: (1, 16), 8: (1, 16), 16: (1, 16)}))


def ms_per_item(fn: Callable, items: list) -> float:
    """Mean milliseconds per item of one pass of ``fn`` over ``items``."""
    began = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - began) / len(items) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=120, help="number of chorales (default 120)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per measurement; the best is kept")
    parser.add_argument("--smoke", action="store_true", help="5 chorales, 1 repeat")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"MIDI cache (default {DEFAULT_CACHE})")
    args = parser.parse_args()
    n, repeats = (5, 1) if args.smoke else (args.n, args.repeats)

    files = export_chorales(n, args.cache_dir)
    blobs = [f.read_bytes() for f in files]
    ours = RemiTokenizer()
    pieces = [load_piece(b) for b in blobs]
    our_ids = [ours.encode_piece(p) for p in pieces]
    minutes = sum(p.duration_seconds for p in pieces) / 60
    timed = {  # row -> [(fn, items) for mstoolkit, for MidiTok]
        "encode (in memory)": [(ours.encode_piece, pieces)],
        "MIDI bytes -> object": [(load_piece, blobs)],
        "encode (from MIDI bytes)": [(ours.encode, blobs)],
        "decode (to object)": [(ours.decode, our_ids)],
        "decode (to MIDI bytes)": [(lambda ids: ours.decode(ids).to_midi_bytes(), our_ids)],
    }
    counts = {"tokens per minute of music": [sum(len(ids) - 2 for ids in our_ids) / minutes],
              "vocabulary size": [ours.vocab_size]}
    try:
        from symusic import Score

        theirs = miditok_remi()
    except ImportError:
        theirs = None
    if theirs is not None:
        scores = [Score.from_midi(b) for b in blobs]
        their_ids = [theirs.encode(s).ids for s in scores]
        timed["encode (in memory)"].append((theirs.encode, scores))
        timed["MIDI bytes -> object"].append((Score.from_midi, blobs))
        timed["encode (from MIDI bytes)"].append((lambda b: theirs.encode(Score.from_midi(b)), blobs))
        timed["decode (to object)"].append((theirs.decode, their_ids))
        timed["decode (to MIDI bytes)"].append((lambda ids: theirs.decode(ids).dumps_midi(), their_ids))
        counts["tokens per minute of music"].append(sum(len(ids) for ids in their_ids) / minutes)
        counts["vocabulary size"].append(theirs.vocab_size)
    best = {row: [float("inf")] * len(runs) for row, runs in timed.items()}
    for _ in range(repeats):  # interleaved, so both sides see the same machine load
        for row, runs in timed.items():
            for side, (fn, items) in enumerate(runs):
                best[row][side] = min(best[row][side], ms_per_item(fn, items))

    print(f"{len(files)} Bach chorales ({minutes:.1f} min of music, {sum(map(len, pieces))} notes), "
          f"best of {repeats}; times in ms per file")
    print(f"| {'measure':<28} | {'mstoolkit':>10} | {'MidiTok REMI':>12} | {'ratio':>6} |")
    print(f"|{'-' * 30}|{'-' * 11}:|{'-' * 13}:|{'-' * 7}:|")
    for row, values in best.items():
        other = f"{values[1]:.3f}" if len(values) > 1 else "n/a"
        ratio = f"{values[1] / values[0]:.2f}x" if len(values) > 1 else ""
        print(f"| {row:<28} | {values[0]:>10.3f} | {other:>12} | {ratio:>6} |")
    for row, values in counts.items():
        other = f"{values[1]:.0f}" if len(values) > 1 else "n/a"
        print(f"| {row:<28} | {values[0]:>10.0f} | {other:>12} | {'':>6} |")
    exact = sum(not differences(ours.quantize(p), ours.decode(ids)) for p, ids in zip(pieces, our_ids))
    print(f"mstoolkit round trip on these files (notes, tempi, time signatures vs quantize): "
          f"{exact} / {len(pieces)} exact")
    if theirs is None:
        print("(MidiTok not installed: pip install 'mstoolkit[miditok]')")
    print("ratio = MidiTok time / mstoolkit time (above 1: mstoolkit is faster)")


if __name__ == "__main__":
    main()
