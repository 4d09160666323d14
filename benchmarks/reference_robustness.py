"""How robust is a model's hearing of a style reference? Style accuracy under perturbed references.

References the model never trained on: windows of StyleBench's *test* split pieces
(``data_samples/stylebench/test_split_v1.json``), each rendered in one style (``--per-style`` windows
per style, spread over the split's pieces), then perturbed as a real recording might be: other
General-MIDI instruments, another tempo, another key or register, room reverb, noise, filtering and EQ, lossy files, other
sample rates, stereo, other lengths. Each row reports, over the same references:

- ``recognized``: top-1 accuracy of :class:`mstoolkit.recognize.StyleRecognizer` (the model's own style
  encoder, nearest style centroid);
- ``accepted``: the share the recognizer accepts as a known style (distance <= its threshold and, with
  ``--gate`` (default: the demo, as the CLI and widgets ask), the gate model's recognizer accepting it too);
- ``transfer``: style accuracy of a transfer made with that reference: one content window per reference
  (another test piece, ``content_style="straight"``, greedy, as :func:`mstoolkit.generate.transfer`),
  the output classified by StyleBench's style classifier (:func:`mstoolkit.bench.style_classifier`);
- ``distance``: the median and the largest distance to the nearest style (what the threshold is compared
  with), and the median best cosine similarity.

Then rows of things that are not music (speech, silence, white noise): the share the recognizer
answers "matches no known style". Transfers of all references of a row run as one batch (the style
vector of each reference is put in place of the encoder's output); the first references are also
run through ``transfer()`` itself, and the script stops if the two disagree.

    python benchmarks/reference_robustness.py                       # 9 styles x 4 references, ~10 min
    python benchmarks/reference_robustness.py --per-style 1 --rows clean,reverb --no-transfer   # seconds
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/reference_robustness.py --out benchmarks/results/reference_robustness.md
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.signal
import soundfile
import torch
from tqdm.auto import tqdm

from mstoolkit import audio
from mstoolkit.bench import style_classifier
from mstoolkit.checkpoint import load_with_tokenizer
from mstoolkit.data import load_test_split, piece_of
from mstoolkit.generate import generate, prepare_content, reference_mel, token_budget, transfer
from mstoolkit.piece import Piece, TempoChange
from mstoolkit.recognize import MUSIC_GATE, StyleRecognizer
from mstoolkit.shipped import shipped_path
from mstoolkit.unique_notes import UniqueNotes

SR = audio.SAMPLE_RATE
# General-MIDI programs no StyleBench style uses ({48, 65, 4, 16, 45, 21, 0, 40, 46, 3, 73, 24}):
# an organ (sustained, the chorales' own instrument), a mallet (percussive, decaying) and a reed.
NEW_PROGRAMS = {"church organ (GM 19)": 19, "vibraphone (GM 11)": 11, "clarinet (GM 71)": 71}


# ------------------------------------------------------------------------------ perturbations
def peak_normalize(wave: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """Scale to ``peak`` (as ``audio.render`` does), so that a row changes one thing, not the level."""
    return (wave * (peak / max(float(np.max(np.abs(wave))), 1e-12))).astype(np.float32)


def with_programs(piece: Piece, program: int) -> Piece:
    """Every note played by GM ``program`` (drums stay drums)."""
    return piece.replace(notes=[n if n.is_drum else dataclasses.replace(n, program=program) for n in piece.notes])


def with_tempo(piece: Piece, factor: float) -> Piece:
    """The tempo map scaled by ``factor`` (0.8: 20 % slower)."""
    return piece.replace(tempos=[TempoChange(t.tick, t.bpm * factor) for t in piece.tempos])


def reverb(wave: np.ndarray, rng: np.random.Generator, rt60: float = 1.5, drr_db: float = 0.0) -> np.ndarray:
    """A room: the dry sound plus a tail of exponentially decaying white noise (-60 dB after ``rt60`` s)
    whose energy is ``drr_db`` below the direct sound's (0 dB: as loud as the direct sound)."""
    t = np.arange(int(rt60 * SR)) / SR
    tail = rng.standard_normal(len(t)) * 10 ** (-3 * t / rt60)  # amplitude -60 dB at t = rt60
    tail *= 10 ** (-drr_db / 20) / np.sqrt(np.sum(tail**2))
    ir = np.concatenate([[1.0], tail])  # direct path (energy 1), then the tail
    return peak_normalize(scipy.signal.fftconvolve(wave, ir)[: len(wave)])


def white_noise(wave: np.ndarray, rng: np.random.Generator, snr_db: float = 20.0) -> np.ndarray:
    """``wave`` plus white noise ``snr_db`` below its mean power (over the whole clip)."""
    power = float(np.mean(wave.astype(np.float64) ** 2))
    return peak_normalize(wave + rng.standard_normal(len(wave)) * np.sqrt(power / 10 ** (snr_db / 10)))


def low_pass(wave: np.ndarray, cutoff: float = 3000.0) -> np.ndarray:
    """An 8th-order Butterworth low-pass (a muffled, telephone-like recording), zero phase."""
    sos = scipy.signal.butter(8, cutoff, "lowpass", fs=SR, output="sos")
    return peak_normalize(scipy.signal.sosfiltfilt(sos, wave))


def eq_tilt(wave: np.ndarray, bass_db: float, treble_db: float) -> np.ndarray:
    """A linear-phase EQ whose gain goes from ``bass_db`` (<= 100 Hz) through 0 dB (1 kHz) to
    ``treble_db`` (>= 8 kHz), linear in log-frequency in between (scipy's firwin2)."""
    freqs = np.array([0, 100, 1000, 8000, SR / 2])
    gains_db = np.array([bass_db, bass_db, 0.0, treble_db, treble_db])
    dense = np.linspace(0, SR / 2, 512)
    gain = np.interp(np.log10(np.maximum(dense, 1.0)), np.log10(np.maximum(freqs, 1.0)), gains_db)
    fir = scipy.signal.firwin2(2047, dense, 10 ** (gain / 20), fs=SR)
    return peak_normalize(scipy.signal.fftconvolve(wave, fir, mode="same"))


def write_file(folder: Path, name: str, wave: np.ndarray, sample_rate: int, fmt: str, subtype: str) -> Path:
    """``wave`` (mono ``(samples,)`` or stereo ``(samples, 2)``) written with soundfile."""
    path = folder / name
    soundfile.write(path, wave, sample_rate, format=fmt, subtype=subtype)
    return path


# ------------------------------------------------------------------------------ references
@dataclasses.dataclass
class Reference:
    window: str  # StyleBench window id of the reference
    style: str
    content: str  # window id of the content transferred with it (another piece)


class Renders:
    """Rendered pieces and waves, cached: several rows start from the same rendering."""

    def __init__(self, bench):
        self.bench, self.waves = bench, {}

    def piece(self, window: str, style: str) -> Piece:
        return self.bench.render(window, style)

    def wave(self, window: str, style: str, sample_rate: int = SR) -> np.ndarray:
        key = (window, style, sample_rate)
        if key not in self.waves:
            self.waves[key] = audio.render(self.piece(window, style), sample_rate=sample_rate)
        return self.waves[key]

    def long_wave(self, ref: Reference, seconds: float, order: list[str]) -> np.ndarray:
        """``seconds`` of ``ref.style``: the reference window, then the next windows of the split in
        ``order`` (its own piece's first), rendered one by one and laid end to end."""
        start = order.index(ref.window)
        parts, total = [], 0
        for window in order[start:] + order[:start]:
            if total >= seconds * SR:
                break
            parts.append(self.wave(window, ref.style))
            total += len(parts[-1])
        return np.concatenate(parts)[: int(seconds * SR)]


def choose_references(bench, styles: list[str], per_style: int) -> list[Reference]:
    """``per_style`` windows per style, spread evenly over the test split's windows (so over its
    pieces); each with a content window of another piece, half the split away."""
    ids = bench.window_ids("test")
    n = len(styles) * per_style
    refs = []
    for k in range(n):
        window = ids[k * len(ids) // n]
        j = (k * len(ids) // n + len(ids) // 2) % len(ids)
        while piece_of(ids[j]) == piece_of(window):
            j = (j + 1) % len(ids)
        refs.append(Reference(window, styles[k % len(styles)], ids[j]))
    return refs


# ------------------------------------------------------------------------------ rows
Row = Callable[[Reference], object]  # reference -> what reference_mel takes (array, Piece, path)


def music_rows(renders: Renders, folder: Path, order: list[str]) -> dict[str, Row]:
    """Row name -> a function making the perturbed reference (audio array or file path)."""
    def rng(ref: Reference, salt: str) -> np.random.Generator:  # the same noise every run
        return np.random.default_rng(int(hashlib.sha256(f"{ref.window}|{ref.style}|{salt}".encode()).hexdigest()[:16], 16))

    def clean(ref):
        return renders.wave(ref.window, ref.style)

    def stem(ref):
        return f"{ref.window.replace('/', '_')}.{ref.style}"

    rows: dict[str, Row] = {"clean": clean}
    for label, program in NEW_PROGRAMS.items():
        rows[f"instrument: {label}"] = lambda ref, p=program: audio.render(
            with_programs(renders.piece(ref.window, ref.style), p))
    rows["tempo x0.8"] = lambda ref: audio.render(with_tempo(renders.piece(ref.window, ref.style), 0.8))
    rows["tempo x1.2"] = lambda ref: audio.render(with_tempo(renders.piece(ref.window, ref.style), 1.2))
    # A recording a user brings is in its own key and register; StyleBench's references are in the corpus's.
    for label, semitones in (("key: 5 semitones down", -5), ("register: an octave down", -12),
                             ("register: an octave up", 12)):
        rows[label] = lambda ref, k=semitones: audio.render(renders.piece(ref.window, ref.style).transpose(k))
    rows["reverb RT60 1.5 s (DRR 0 dB)"] = lambda ref: reverb(clean(ref), rng(ref, "reverb"))
    rows["white noise, SNR 20 dB"] = lambda ref: white_noise(clean(ref), rng(ref, "noise"))
    rows["low-pass 3 kHz"] = lambda ref: low_pass(clean(ref))
    rows["EQ bass +6 dB, treble -6 dB"] = lambda ref: eq_tilt(clean(ref), 6.0, -6.0)
    rows["EQ bass -6 dB, treble +6 dB"] = lambda ref: eq_tilt(clean(ref), -6.0, 6.0)
    rows["level -20 dB"] = lambda ref: clean(ref) * np.float32(0.1)
    rows["MP3 file"] = lambda ref: write_file(folder, f"{stem(ref)}.mp3", clean(ref), SR, "MP3", "MPEG_LAYER_III")
    rows["OGG Vorbis file"] = lambda ref: write_file(folder, f"{stem(ref)}.ogg", clean(ref), SR, "OGG", "VORBIS")
    def at_rate(rate: int, fmt: str, suffix: str) -> Row:  # rendered at the file's rate, as a recording is
        return lambda ref: write_file(folder, f"{stem(ref)}.{rate}.{suffix}", renders.wave(ref.window, ref.style, rate),
                                      rate, fmt, "PCM_16")

    rows["WAV file, 8 kHz"] = at_rate(8000, "WAV", "wav")
    rows["WAV file, 44.1 kHz"] = at_rate(44100, "WAV", "wav")
    rows["FLAC file, 48 kHz"] = at_rate(48000, "FLAC", "flac")

    def stereo(ref):  # a spaced pair: the right microphone 5 ms later and 3 dB quieter
        left = clean(ref)
        right = np.concatenate([np.zeros(int(0.005 * SR), np.float32), left])[: len(left)] * np.float32(0.7)
        return write_file(folder, f"{stem(ref)}.stereo.wav", np.stack([left, right], axis=1), SR, "WAV", "PCM_16")

    rows["stereo WAV file"] = stereo
    rows["length 5 s"] = lambda ref: clean(ref)[: 5 * SR]
    rows["length 30 s"] = lambda ref: renders.long_wave(ref, 30.0, order)
    rows["length 60 s"] = lambda ref: renders.long_wave(ref, 60.0, order)
    return rows


def not_music() -> dict[str, list[tuple[str, object]]]:
    """Row name -> (label, reference) items that must get "matches no known style"."""
    speech_path = shipped_path("audio", "speech_gettysburg.ogg")
    speech = audio.load_audio(speech_path)
    rng = np.random.default_rng(2024)
    return {
        "speech (shipped, espeak-ng)": [
            ("file", speech_path), ("20 dB quieter", speech * np.float32(0.1)),
            ("first 3 s", speech[: 3 * SR]), ("last 3 s", speech[-3 * SR:]),
            ("speech + noise 20 dB", white_noise(speech, rng)), ("speech x3, 18 s", np.tile(speech, 3)),
        ],
        "silence": [
            ("zeros 8 s", np.zeros(8 * SR, np.float32)), ("zeros 60 s", np.zeros(60 * SR, np.float32)),
            ("dither -90 dBFS", (rng.standard_normal(8 * SR) * 10 ** (-90 / 20)).astype(np.float32)),
        ],
        "white noise": [(f"peak {peak:g}, {seconds} s, seed {seed}",
                         peak_normalize(rng.standard_normal(seconds * SR), peak))
                        for seed, (peak, seconds) in enumerate([(1.0, 8), (0.3, 8), (0.05, 8), (1.0, 30), (1.0, 3)])],
    }


# ------------------------------------------------------------------------------ transfers
@torch.no_grad()
def transfer_batch(model, tokenizer, contents: list[Piece], mels: list[np.ndarray], window_bars: int = 4) -> list[Piece]:
    """:func:`mstoolkit.generate.transfer` (greedy, content rendered "straight") of each content with its
    own reference mel, all in one batch. ``generate`` takes one mel shape for the batch, and the
    references differ in length, so each reference's style vector is computed here and put in place
    of the style encoder's output (a forward hook); the rest follows ``transfer`` step by step."""
    from mstoolkit.piece import Piece as P

    styles = torch.stack([model.style_encoder.embed(m) for m in mels])  # (N, d_style)
    rows, owners, spans = [], [], []
    prepared = [prepare_content(tokenizer, c) for c in contents]
    for i, piece in enumerate(prepared):
        bar_starts = piece.bar_starts()
        firsts = list(range(0, len(bar_starts), window_bars))
        for first in firsts:
            rows.append(tokenizer.encode(piece.slice_bars(first, min(window_bars, len(bar_starts) - first))))
            owners.append(i)
            spans.append((first, min(first + window_bars, len(bar_starts))))
    per_row = styles[owners]  # (B, d_style)
    hook = model.style_encoder.register_forward_hook(lambda module, args, out: per_row)
    try:
        dummy = torch.zeros(model.config.n_mels, 8)  # (n_mels, frames): replaced by per_row in the hook
        outputs = generate(model, rows, dummy, max_new_tokens=token_budget(max(map(len, rows)), model.config.max_len),
                           temperature=0.0, grammar=tokenizer.grammar, bar_ids=tokenizer.bar_ids, max_bars=window_bars,
                           bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id, unique_notes=UniqueNotes(tokenizer))
    finally:
        hook.remove()
    results = []
    for i, piece in enumerate(prepared):
        n_bars = len(piece.bar_starts())
        edges = piece.bar_starts(piece.end_tick + 4 * 192)
        notes = []
        for out, owner, (first, last) in zip(outputs, owners, spans):
            if owner != i:
                continue
            offset, limit = edges[first], edges[last]
            for note in tokenizer.decode(out).notes:
                start = note.start + offset
                if start < limit:
                    notes.append(dataclasses.replace(note, start=start, duration=min(note.duration, limit - start)))
        kept = piece.slice_ticks(0, edges[n_bars])
        results.append(P(notes, kept.tempos, kept.time_signatures, kept.key, kept.name))
    return results


# ------------------------------------------------------------------------------ main
def heard_as(refs: list[Reference], heard: list) -> str:
    """The misrecognised references of one row, counted by (true style, recognised style), most first:
    ``"staccato -> stride 4, alberti -> arpeggio 4"``; empty when every reference was recognised.
    ``heard``: what ``StyleRecognizer.recognize`` said of each reference (its ``ranking`` puts the nearest first).
    """
    pairs = Counter((r.style, h.ranking[0][0]) for r, h in zip(refs, heard) if h.ranking[0][0] != r.style)
    return ", ".join(f"{true} -> {said} {n}" for (true, said), n in pairs.most_common())


def select_rows(spec: str, names: list[str]) -> set[str]:
    """The row names ``--rows`` asks for: comma-separated names or name prefixes ("clean,reverb",
    "instrument"). Names that contain commas ("white noise, SNR 20 dB") work too: the longest run of items
    that names a row wins. An item that names no row stops the script, listing the rows.

        >>> sorted(select_rows("clean,white noise, SNR 20 dB", ["clean", "white noise, SNR 20 dB", "white noise"]))
        ['clean', 'white noise, SNR 20 dB']
    """
    items = [item.strip() for item in spec.split(",")]
    chosen: set[str] = set()
    i = 0
    while i < len(items):
        for j in range(len(items), i, -1):  # longest first
            candidate = ", ".join(items[i:j])
            matches = [n for n in names if n == candidate] or [n for n in names if candidate and n.startswith(candidate)]
            if matches:
                chosen.update(matches)
                i = j
                break
        else:
            sys.exit(f"--rows: no row is named or starts with {items[i]!r}; the rows are: {'; '.join(names)}")
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="demo", help="model to test (default: the shipped demo)")
    parser.add_argument("--manifest", type=Path, default=shipped_path("stylebench", "test_split_v1.json"))
    parser.add_argument("--per-style", type=int, default=4, help="references per style (default %(default)s)")
    parser.add_argument("--rows", default=None,
                        help="comma-separated row names or prefixes to run, e.g. 'clean,instrument' (default: all)")
    parser.add_argument("--no-transfer", action="store_true", help="recognizer columns only (fast)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    parser.add_argument("--confusion", action="store_true",
                        help="after the music rows, a table of what their misrecognised references were heard as "
                             "(e.g. 'staccato -> stride 4')")
    parser.add_argument("--out", type=Path, default=None, help="also write the table into this Markdown file")
    parser.add_argument("--gate", default=MUSIC_GATE,
                        help="checkpoint whose recognizer must also accept a reference, as in the CLI and the "
                             "widgets (default %(default)s; 'none': the model's own recognizer alone)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    model, tokenizer, _ = load_with_tokenizer(args.checkpoint)
    recognizer = StyleRecognizer.from_model(model, gate=None if args.gate == "none" else args.gate)
    bench = load_test_split(args.manifest, progress=False)
    classifier = None if args.no_transfer else style_classifier(bench)[0]
    styles = list(bench.styles)
    refs = choose_references(bench, styles, args.per_style)
    renders = Renders(bench)
    order = bench.window_ids("test")
    tmp = tempfile.TemporaryDirectory()
    rows = music_rows(renders, Path(tmp.name), order)
    negatives = not_music()
    wanted = None if args.rows is None else select_rows(args.rows, [*rows, *negatives])
    contents = [bench.render(r.content, "straight") for r in refs]

    if classifier is not None:  # the batched path must give what transfer() gives
        check = refs[: min(3, len(refs))]
        mels = [reference_mel(renders.wave(r.window, r.style)) for r in check]
        batched = transfer_batch(model, tokenizer, contents[: len(check)], mels)
        single = [transfer(model, tokenizer, c, m) for c, m in zip(contents, mels)]
        same = [a.notes == b.notes for a, b in zip(batched, single)]
        print(f"batched transfer == transfer(): {sum(same)}/{len(same)}")
        if not all(same):
            sys.exit("the batched transfer differs from transfer(); fix transfer_batch before trusting the table")

    table, confusions = [], []
    header = (f"| reference ({len(refs)}: {args.per_style} per style x {len(styles)} styles) | recognized | accepted "
              f"| transfer style acc. | distance median | distance max | best cos median |")
    lines = [header, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    print(header)
    for name, make in rows.items():
        if wanted is not None and name not in wanted:
            continue
        heard, mels = [], []
        for ref in tqdm(refs, desc=name, leave=False):
            mel = reference_mel(make(ref))  # what transfer() hears (paths go through audio.load_audio)
            mels.append(mel)
            heard.append(recognizer.recognize(mel))
        recognized = np.mean([h.ranking[0][0] == r.style for h, r in zip(heard, refs)])
        accepted = np.mean([h.known for h in heard])
        best = np.array([h.distance for h in heard])
        cell = "-"
        if classifier is not None:
            outputs = transfer_batch(model, tokenizer, contents, mels)
            predicted = [classifier.predict([o])[0] if len(o) else None for o in outputs]
            cell = f"{np.mean([p == r.style for p, r in zip(predicted, refs)]):.3f}"
        cos = np.median([h.best_similarity for h in heard])
        line = (f"| {name} | {recognized:.3f} | {accepted:.3f} | {cell} | {np.median(best):.1f} | {best.max():.1f} "
                f"| {cos:.3f} |")
        lines.append(line)
        print(line, flush=True)
        table.append((name, heard))
        if args.confusion:
            confusions.append((name, heard_as(refs, heard)))

    if confusions:
        lines += ["", "| reference | misrecognised: true style -> heard as (count) |", "| --- | --- |"]
        lines += [f"| {name} | {text} |" for name, text in confusions if text]
        print("\n".join(lines[-(2 + sum(bool(text) for _, text in confusions)):]))

    lines += ["", "| not music | n | matches no known style | distance min | best cos max | answers |",
              "| --- | ---: | ---: | ---: | ---: | --- |"]
    print("\n".join(lines[-3:]))
    for name, items in negatives.items():
        if wanted is not None and name not in wanted:
            continue
        heard = [recognizer.recognize(x) for _, x in items]
        best = np.array([h.distance for h in heard])
        answers = "; ".join(f"{label}: {'known' if h.known else h.reason}" for (label, _), h in zip(items, heard))
        cos = max(h.best_similarity for h in heard)
        line = (f"| {name} | {len(items)} | {np.mean([not h.known for h in heard]):.3f} | {best.min():.1f} "
                f"| {cos:.3f} | {answers} |")
        lines.append(line)
        print(line, flush=True)

    minutes = (time.perf_counter() - started) / 60
    gate = (f"; gate: the {recognizer.gate_name} model's recognizer (threshold {recognizer.gate.threshold:.1f})"
            if recognizer.gate is not None else "; no gate")
    footer = (f"\nrecognizer: distance threshold {recognizer.threshold:.1f}, confidence scale {recognizer.scale:.1f}{gate}; "
              f"{len(refs)} references; {minutes:.1f} min on {torch.get_num_threads()} torch thread(s)")
    print(footer)
    if args.out is not None:
        command = "python benchmarks/reference_robustness.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.out.write_text("\n".join([f"```\n{command}\n```", "", *lines, footer, ""]))
    tmp.cleanup()


if __name__ == "__main__":
    main()
