"""Build StyleBench v2 and its held-out collection, print their sizes, and ship their test manifests.

StyleBench v2 (``mstoolkit.data.STYLEBENCH_V2``, corpus name ``stylebench-v2``) reads several kinds of
music that music21 ships, split by piece as v1 is (80 / 10 / 10 by a hash of the piece's name, seed 0).
The held-out collection (``STYLEBENCH_V2_HELD_OUT``, ``stylebench-v2-held-out``) is built on its own with
every piece in its test split, so no training run on ``stylebench-v2`` ever sees it. Both test splits are
written to ``data_samples/stylebench/`` (``test_split_v2.json``, ``held_out_v2.json``), from where
``mstoolkit bench --manifest test_split_v2`` finds them; v1 (``test_split_v1.json``) is left as it is.

    PYTHONPATH=. python benchmarks/build_stylebench_v2.py            # sizes + manifests
    PYTHONPATH=. python benchmarks/build_stylebench_v2.py --mels     # + the test splits' reference mels
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from mstoolkit.data import CORPUS_ALIASES, SPLITS, StyleBench, StyleBenchConfig, build_stylebench

SHIPPED = Path(__file__).resolve().parents[1] / "data_samples" / "stylebench"
BUILDS = {
    "test_split_v2": StyleBenchConfig(corpus="stylebench-v2"),
    "held_out_v2": StyleBenchConfig(corpus="stylebench-v2-held-out", split_fractions=(0.0, 0.0, 1.0)),
}


def size_table(bench: StyleBench) -> list[str]:
    """Markdown rows: pieces / windows / triplets per split, for each collection and in all."""
    rows = ["| collection | " + " | ".join(f"{s} pieces / windows / triplets" for s in SPLITS) + " |",
            "| --- |" + " ---: |" * len(SPLITS)]
    collections = bench.collection_summary()
    for name in sorted(collections) + ["all"]:
        counts = bench.summary() if name == "all" else collections[name]
        cells = [f"{c['pieces']} / {c['windows']} / {c['triplets']}" for c in (counts[s] for s in SPLITS)]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mels", action="store_true", help="also render the reference mels of both test splits")
    parser.add_argument("--out", type=Path, default=SHIPPED, help=f"where the manifests go (default {SHIPPED})")
    args = parser.parse_args()
    for name, config in BUILDS.items():
        t0 = time.perf_counter()
        bench = build_stylebench(config)
        built = time.perf_counter() - t0
        path = bench.save_split(args.out / f"{name}.json", "test")
        print(f"\n## {name}: corpus {config.corpus!r} = {CORPUS_ALIASES[config.corpus]!r}")
        print(f"built in {built:.0f} s (pieces parsed once, then cached); test manifest -> {path}\n")
        print("\n".join(size_table(bench)))
        if args.mels:
            t0 = time.perf_counter()
            bench.precompute_mels("test")
            print(f"\nreference mels of the test split: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
