"""Audio benchmark: render speed per backend and log-mel parity/speed (torch vs librosa).

Renders the same Bach chorales from music21's corpus with every rendering backend that is
installed, then computes log-mel spectrograms of the rendered audio with librosa and with
mstoolkit's torch `MelSpectrogram` and compares them.

    python benchmarks/bench_audio.py            # 8 chorales
    python benchmarks/bench_audio.py --smoke    # 1 chorale, 1 repeat (seconds)
    python benchmarks/bench_audio.py --device cuda

Speeds are "seconds of audio per second": CPU seconds (time.process_time, all threads of this
process) and wall-clock seconds; the best of --repeats runs.
"""
from __future__ import annotations

import argparse
import time

import librosa
import music21
import numpy as np
import torch

from mstoolkit import audio
from mstoolkit.piece import Piece

CHORALES = ["bach/bwv66.6", "bach/bwv1.6", "bach/bwv10.7", "bach/bwv101.7", "bach/bwv102.7",
            "bach/bwv103.6", "bach/bwv104.6", "bach/bwv108.6"]


def timed(fn, repeats: int):
    """Run ``fn`` ``repeats`` times; return (result, best CPU seconds, best wall seconds)."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        result = fn()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return result, best_cpu, best_wall


def available_backends(piece: Piece) -> list[str]:
    names = []
    for name in audio.BACKENDS:
        try:
            audio.render(piece.slice_bars(0, 1), backend=name)  # also warms up imports
            names.append(name)
        except ImportError as err:
            print(f"  (skipping backend {name}: {err})")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=len(CHORALES), help="number of chorales (max %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats, best one kept")
    parser.add_argument("--sample-rate", type=int, default=audio.SAMPLE_RATE)
    parser.add_argument("--window", type=float, default=5.0, help="seconds per clip in the batched mel runs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="extra device for the batched torch mel (default: cuda if available)")
    parser.add_argument("--smoke", action="store_true", help="tiny run: 1 chorale, 1 repeat")
    args = parser.parse_args()
    if args.smoke:
        args.pieces, args.repeats = 1, 1
    sr = args.sample_rate

    pieces = [Piece.from_music21(music21.corpus.parse(name)) for name in CHORALES[: args.pieces]]
    seconds = sum(p.duration_seconds + audio.TAIL_SECONDS for p in pieces)
    print(f"{len(pieces)} chorales, {seconds:.1f} s of audio at {sr} Hz, torch threads {torch.get_num_threads()}")

    backends = available_backends(pieces[0])
    print("\n## Render speed (seconds of audio per second)\n")
    print("| backend | audio / CPU s | audio / wall s | ms per chorale (wall) |")
    print("| --- | ---: | ---: | ---: |")
    renders = {}
    for name in backends:
        clips, cpu, wall = timed(lambda: [audio.render(p, sr, backend=name) for p in pieces], args.repeats)
        renders[name] = clips
        print(f"| {name} | {seconds / cpu:.0f}x | {seconds / wall:.0f}x | {1000 * wall / len(pieces):.1f} |")

    clips = renders["midirenderer"] if "midirenderer" in renders else next(iter(renders.values()))
    module = audio.MelSpectrogram(sample_rate=sr)

    print("\n## Mel parity, torch (CPU, float32) vs librosa, on the rendered chorales\n")
    diffs, rel = [], []
    for clip in clips:
        x = torch.from_numpy(clip)
        diffs.append(np.abs(module(x).numpy() - audio.mel(clip, sr)))
        reference = librosa.feature.melspectrogram(y=clip, sr=sr, n_fft=2048, hop_length=512, n_mels=128)
        rel.append(np.max(np.abs(module.power(x).numpy() - reference)) / reference.max())
    every = np.concatenate([d.ravel() for d in diffs])
    print("| max abs dB diff | mean abs dB diff | 99.9th pct dB diff | max power diff / peak power |")
    print("| ---: | ---: | ---: | ---: |")
    print(f"| {every.max():.4f} | {every.mean():.2e} | {np.quantile(every, 0.999):.4f} | {max(rel):.1e} |")

    print(f"\n## Mel speed on {args.window:g} s clips (seconds of audio per second)\n")
    n = int(args.window * sr)
    windows = np.stack([c[i : i + n] for c in clips for i in range(0, len(c) - n + 1, n)])  # (B, n)
    total = len(windows) * args.window
    print(f"{len(windows)} clips, {total:.0f} s of audio\n")
    print("| method | audio / CPU s | audio / wall s |")
    print("| --- | ---: | ---: |")
    batch = torch.from_numpy(windows)
    runs = {
        "librosa, one clip at a time": lambda: [audio.mel(w, sr) for w in windows],
        "torch CPU, one clip at a time": lambda: [module(w) for w in batch],
        f"torch CPU, batch of {len(windows)}": lambda: module(batch),
    }
    with torch.no_grad():
        for label, fn in runs.items():
            _, cpu, wall = timed(fn, args.repeats)
            print(f"| {label} | {total / cpu:.0f}x | {total / wall:.0f}x |")
        if args.device != "cpu":
            gpu_module, gpu_batch = module.to(args.device), batch.to(args.device)  # the first call also warms cuFFT up
            gap = (gpu_module(gpu_batch).cpu() - torch.from_numpy(np.stack([audio.mel(w, sr) for w in windows]))).abs()
            for size in (len(windows), 256):  # the clips as they are, then tiled to a training-size batch
                tiled = gpu_batch.repeat(-(-size // len(windows)), 1)[:size]  # (size, n)

                def on_device():
                    result = gpu_module(tiled)
                    torch.cuda.synchronize()
                    return result

                _, _, wall = timed(on_device, max(args.repeats, 10))
                print(f"| torch {args.device}, batch of {size} | - | {size * args.window / wall:.0f}x |")
            print(f"\n{args.device} vs librosa: max abs dB diff {gap.max():.4f}, mean {gap.mean():.1e}")


if __name__ == "__main__":
    main()
