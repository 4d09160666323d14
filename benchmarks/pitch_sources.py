"""Where a model's pitch predictions go wrong, teacher forced: is the target pitch in the content?

For every Pitch token of the rule-rendered targets of the first N validation triplets, the model is
fed the true prefix (teacher forcing) and its most likely pitch is compared with the true one. Target
pitches are sorted by where they come from: the same pitch in the content within a beat of the
note's time, a content pitch moved by whole octaves (within a beat), elsewhere in the content window,
or not in the content. The accuracy per class says whether a model fails to *find* the content's note
or to *move* it; the share of each class says how much a copy mechanism can win.

    PYTHONPATH=. python benchmarks/pitch_sources.py --checkpoint demo --limit 64

Without sampling these are upper bounds: a generated transfer also conditions on its own mistakes.
"""
from __future__ import annotations

import argparse
import collections

import torch

from mstoolkit.checkpoint import load_with_tokenizer
from mstoolkit.data import StyleBenchConfig, StyleBenchDataset, build_stylebench, collate
from mstoolkit.model import beat_grid_indices, musical_time
from mstoolkit.piece import TICKS_PER_QUARTER

CLASSES = ("same pitch within a beat", "octave move within a beat", "elsewhere in the window", "not in the content")


def pitch_sources(checkpoint: str, limit: int, batch_size: int = 8) -> tuple[collections.Counter, dict]:
    """Counts per class (``n/<class>``, ``right/<class>``) overall and per target style."""
    model, tok, _ = load_with_tokenizer(checkpoint)
    cfg, types = model.config, list(tok.token_types)
    first, n_pitches = types.index("Pitch"), types.count("Pitch")
    bench = build_stylebench(StyleBenchConfig(), progress=False)
    data = StyleBenchDataset(bench, "val", tok, augment=False)
    total, by_style = collections.Counter(), collections.defaultdict(collections.Counter)
    with torch.no_grad():
        for start in range(0, min(limit, len(data)), batch_size):
            items = [data[i] for i in range(start, min(start + batch_size, limit, len(data)))]
            batch = collate(items)
            content, target = batch["content_ids"], batch["target_ids"]
            logits, _ = model(content, batch["reference_mel"], target[:, :-1])  # (B, T, V)
            t_content = musical_time(*beat_grid_indices(content, cfg))  # (B, S) ticks
            t_target = musical_time(*beat_grid_indices(target[:, :-1], cfg))  # (B, T)
            guess = logits[..., first:first + n_pitches].argmax(-1) + first  # (B, T)
            for b, item in enumerate(items):
                is_pitch = (content[b] >= first) & (content[b] < first + n_pitches)  # (S,)
                everywhere = set(content[b][is_pitch].tolist())
                for k in range(target.shape[1] - 1):
                    true = int(target[b, k + 1])
                    if not first <= true < first + n_pitches:
                        continue
                    near = set(content[b][is_pitch & ((t_content[b] - t_target[b, k]).abs() <= TICKS_PER_QUARTER)].tolist())
                    kind = (CLASSES[0] if true in near else
                            CLASSES[1] if any((true - p) % 12 == 0 for p in near) else
                            CLASSES[2] if true in everywhere else CLASSES[3])
                    for counts in (total, by_style[data.styles[item["style_b"]]]):
                        counts[f"n/{kind}"] += 1
                        counts[f"right/{kind}"] += int(guess[b, k]) == true
    return total, by_style


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", help="checkpoint or run folder (repeatable); default demo")
    parser.add_argument("--limit", type=int, default=64, help="validation triplets (default 64)")
    args = parser.parse_args()
    for checkpoint in args.checkpoint or ["demo"]:
        total, by_style = pitch_sources(checkpoint, args.limit)
        n = sum(total[f"n/{c}"] for c in CLASSES)
        right = sum(total[f"right/{c}"] for c in CLASSES)
        print(f"\n{checkpoint}: {n} target pitches of {args.limit} val triplets, teacher-forced accuracy {right / n:.3f}\n")
        print("| target pitch is | share | predicted right |\n| --- | ---: | ---: |")
        for c in CLASSES:
            print(f"| {c} | {total[f'n/{c}'] / n:.1%} | {total[f'right/{c}'] / max(1, total[f'n/{c}']):.1%} |")
        print("\n| target style | accuracy | same pitch within a beat: share, right | octave move: share, right |")
        print("| --- | ---: | ---: | ---: |")
        for style, counts in sorted(by_style.items()):
            m = sum(counts[f"n/{c}"] for c in CLASSES)
            cells = [f"{counts[f'n/{c}'] / m:.0%}, {counts[f'right/{c}'] / max(1, counts[f'n/{c}']):.0%}" for c in CLASSES[:2]]
            print(f"| {style} | {sum(counts[f'right/{c}'] for c in CLASSES) / m:.2f} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
