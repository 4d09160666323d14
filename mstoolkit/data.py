"""Corpora, StyleBench triplets, the PyTorch Dataset/collate, and their on-disk caches.

    >>> bench = build_stylebench(StyleBenchConfig(corpus="bach/chorales"))  # doctest: +SKIP
    >>> bench.summary()["test"]  # doctest: +SKIP
    {'pieces': 29, 'windows': 112, 'triplets': 300}

Corpora
    :func:`music21_corpus` reads any composer or collection of music21's bundled corpus
    (``"bach/chorales"``, ``"beethoven"``, ``"essenFolksong/han1"``); :func:`midi_folder` reads every
    ``*.mid``/``*.midi`` file under a folder. Each converted work is cached as compact JSON
    (never pickle) under ``cache_dir()`` (``~/.cache/mstoolkit``, or ``$MSTOOLKIT_CACHE``), keyed by
    the source identity (music21 version + corpus path, or the MIDI file's bytes),
    :data:`DATA_VERSION` and a hash of ``piece.py``'s source, so a changed converter never serves
    stale pieces. Unreadable items are skipped with a warning that names them.

StyleBench
    Pieces are split into train/val/test by a hash of ``(seed, piece name)``, so adding pieces never
    moves the others; each piece is cut into windows of ``window_bars`` bars; a triplet is
    (content window in style A, a reference window of *another* piece of the same split in style B,
    target = the content window in style B). The test split is written to a JSON manifest that
    :func:`load_test_split` turns back into the exact same triplets.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import io
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from mstoolkit.config import UserError, from_dict
from mstoolkit.piece import Note, Piece, TempoChange, TimeSignature

DATA_VERSION = 1  # bump when the cached piece format or the conversion changes
STYLEBENCH_VERSION = 1  # bump when windowing, splitting or triplet sampling changes
SPLITS = ("train", "val", "test")
MEL_FRAMES = 512  # collate pads/crops reference mels to this many frames (~11.9 s at 22050 Hz, hop 512)
_MIDI_SUFFIXES = (".mid", ".midi")
# when music21 holds one work in several formats, the first suffix listed wins
_MUSIC21_SUFFIXES = (".mxl", ".musicxml", ".xml", ".krn", ".mid", ".midi", ".abc", ".md", ".rntxt")


# ----------------------------------------------------------------------------- cache helpers
def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache root: ``path`` if given, else ``$MSTOOLKIT_CACHE``, else ``~/.cache/mstoolkit``.

        >>> cache_dir("/tmp/x")
        PosixPath('/tmp/x')
    """
    if path is None:
        path = os.environ.get("MSTOOLKIT_CACHE") or Path.home() / ".cache" / "mstoolkit"
    return Path(path).expanduser()


_cache_root = cache_dir  # an alias for functions whose `cache_dir` argument shadows the function


def _sha(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def _code_fingerprint(module: str) -> str:
    """Hash of a module's source file: cached conversions/renders are keyed by the code that made them."""
    import importlib

    return hashlib.sha256(Path(importlib.import_module(module).__file__).read_bytes()).hexdigest()[:16]


def _unit_interval(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (the same on every machine and Python run)."""
    return int(_sha(*parts)[:16], 16) / 16**16


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so concurrent workers never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def piece_to_dict(piece: Piece) -> dict:
    """A compact, JSON-ready dict of ``piece`` (notes as ``[start, duration, pitch, velocity, program, drum]``).

        >>> piece_from_dict(piece_to_dict(Piece([Note(0, 12, 60)]))).notes[0].pitch
        60
    """
    return {
        "name": piece.name,
        "key": piece.key,
        "tempos": [[t.tick, t.bpm] for t in piece.tempos],
        "time_signatures": [[ts.tick, ts.numerator, ts.denominator] for ts in piece.time_signatures],
        "notes": [[n.start, n.duration, n.pitch, n.velocity, n.program, int(n.is_drum)] for n in piece.notes],
    }


def piece_from_dict(data: dict) -> Piece:
    """Inverse of :func:`piece_to_dict`."""
    return Piece(
        notes=[Note(s, d, p, v, prog, bool(drum)) for s, d, p, v, prog, drum in data["notes"]],
        tempos=[TempoChange(tick, bpm) for tick, bpm in data["tempos"]],
        time_signatures=[TimeSignature(*ts) for ts in data["time_signatures"]],
        key=data["key"],
        name=data["name"],
    )


def _piece_sha(piece: Piece) -> str:
    return _sha(json.dumps(piece_to_dict(piece), separators=(",", ":")))[:16]


def _cached_conversion(path: Path, convert) -> tuple[list[Piece], list[tuple[str, str]]]:
    """(pieces, skipped) from the JSON cache file ``path``, or from ``convert()`` (then stored)."""
    try:
        data = json.loads(path.read_text())
        return [piece_from_dict(p) for p in data["pieces"]], [tuple(s) for s in data["skipped"]]
    except (OSError, ValueError, KeyError, TypeError):  # not cached yet, or an unreadable cache file
        pieces, skipped = convert()
        data = {"data_version": DATA_VERSION, "pieces": [piece_to_dict(p) for p in pieces], "skipped": skipped}
        _write_atomic(path, json.dumps(data, separators=(",", ":")).encode())
        return pieces, skipped


def _warn_skipped(name: str, reason: str) -> None:
    warnings.warn(f"skipping {name}: {reason}", UserWarning, stacklevel=3)


def _progress(items: Sequence, desc: str, progress: bool) -> Iterable:
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="file", disable=not progress or len(items) < 2)


# ----------------------------------------------------------------------------- corpora
def _music21_items(query: str) -> list[tuple[str, Path, str | None]]:
    """(name, path, work number) of every corpus work matching ``query``.

    name = corpus path without suffix; works inside a multi-tune ABC file become
    ``"path#number"`` with their number, so each tune is parsed (and cached) on its own.
    """
    from music21 import corpus
    from music21.common import getCorpusFilePath

    root = Path(getCorpusFilePath())
    by_name: dict[str, Path] = {}
    rank = {s: i for i, s in enumerate(_MUSIC21_SUFFIXES)}
    for path in sorted(corpus.getPaths(), key=lambda p: rank.get(p.suffix.lower(), len(rank))):
        by_name.setdefault(path.relative_to(root).with_suffix("").as_posix(), path)
    q = query.strip().strip("/").lower()
    if q in ("bach/chorales", "chorales"):
        # the chorale iterator lists 371 Riemenschneider numbers for 350 distinct files
        wanted = set(corpus.chorales.Iterator(returnType="filename"))
        names = sorted({n for w in wanted for n in by_name if n == w or (w not in by_name and n.startswith(w))})
    else:
        names = sorted(n for n in by_name if n.lower() == q or n.lower().startswith(q + "/"))
    if not names:
        top = sorted({n.split("/")[0] for n in by_name})
        raise UserError(
            f"music21 corpus has nothing for query {query!r}; use 'bach/chorales', a composer or "
            f"collection ({', '.join(top)}), a corpus path such as 'beethoven/opus18no1', "
            "or an existing folder of MIDI files"
        )
    numbers = _abc_work_numbers({by_name[n] for n in names if by_name[n].suffix.lower() == ".abc"})
    items: list[tuple[str, Path, str | None]] = []
    for n in names:
        works = numbers.get(by_name[n], [])
        items += [(f"{n}#{k}", by_name[n], k) for k in works] if len(works) > 1 else [(n, by_name[n], None)]
    return items


def _abc_work_numbers(paths: set[Path]) -> dict[Path, list[str]]:
    """Tune numbers (the ``X:`` reference fields) inside each ABC file, read without parsing."""
    return {p: list(dict.fromkeys(re.findall(r"^X:\s*(\d+)", p.read_text(errors="replace"), re.M))) for p in paths}


def _convert_music21_work(name: str, path: Path, number: str | None) -> tuple[list[Piece], list[tuple[str, str]]]:
    """Parse one corpus work (or a whole file) into pieces; failures become ``skipped``."""
    from music21 import converter, stream

    pieces: list[Piece] = []
    skipped: list[tuple[str, str]] = []
    try:
        parsed = converter.parse(path) if number is None else converter.parse(path, number=int(number))
    except Exception as e:  # music21's parsers raise many exception types on corrupt files
        return [], [(name, f"{type(e).__name__}: {e}")]
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    for i, score in enumerate(scores):
        item = f"{name}#{(score.metadata and score.metadata.number) or i}" if len(scores) > 1 else name
        try:
            pieces.append(Piece.from_music21(score).replace(name=item).validate(item))
        except Exception as e:  # e.g. StreamException on some folk-tune collections
            skipped.append((item, f"{type(e).__name__}: {e}"))
    return pieces, skipped


def music21_corpus(
    query: str = "bach/chorales",
    limit: int | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[Piece]:
    """Pieces from music21's bundled corpus, each named by its corpus path (``"bach/bwv66.6"``).

    ``query`` is ``"bach/chorales"`` (the 350 distinct four-part chorale files), a composer or
    collection folder (``"bach"``, ``"essenFolksong"``) or a corpus path prefix
    (``"beethoven/opus18no1"``). Each tune of a multi-tune ABC file is its own piece, named
    ``"path#number"``, parsed and cached on its own. ``limit`` stops after that many pieces.

        >>> len(music21_corpus("bach/chorales", limit=2))  # doctest: +SKIP
        2
    """
    import music21

    if limit is not None and limit < 1:
        raise UserError(f"limit must be >= 1 or None, got {limit}")
    items = _music21_items(query)
    root = _cache_root(cache_dir) / "pieces"
    pieces: list[Piece] = []
    for name, path, number in _progress(items[:limit] if limit else items, f"music21 {query}", progress):
        key = _sha("music21", music21.__version__, name, DATA_VERSION, _code_fingerprint("mstoolkit.piece"))
        got, skipped = _cached_conversion(root / f"{key}.json", lambda: _convert_music21_work(name, path, number))
        for item, reason in skipped:
            _warn_skipped(item, reason)
        pieces.extend(got)
        if limit and len(pieces) >= limit:
            break
    return _non_empty(pieces[:limit] if limit else pieces, f"music21 corpus {query!r}")


def _non_empty(pieces: list[Piece], source: str) -> list[Piece]:
    if not pieces:
        raise UserError(f"{source}: no readable pieces (every item was skipped, see the warnings)")
    return pieces


def _convert_midi_file(name: str, data: bytes) -> tuple[list[Piece], list[tuple[str, str]]]:
    try:
        return [Piece.from_midi(data).replace(name=name).validate(name)], []
    except Exception as e:  # MidiError by contract; anything else from a parser must not stop the load
        return [], [(name, f"{type(e).__name__}: {e}")]


def midi_folder(
    path: str | os.PathLike,
    *,
    limit: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[Piece]:
    """Every ``*.mid``/``*.midi`` file under ``path`` (recursively), named by its relative path.

    Conversions are cached by a hash of the file's bytes, so a renamed or copied file still hits
    the cache. Unreadable files are skipped with a warning naming them.

        >>> pieces = midi_folder("data_samples")  # doctest: +SKIP
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"midi_folder: {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _MIDI_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"midi_folder: no .mid/.midi files under {folder}")
    root = _cache_root(cache_dir) / "pieces"
    pieces: list[Piece] = []
    for file in _progress(files[:limit] if limit else files, f"MIDI {folder.name}", progress):
        name, data = file.relative_to(folder).as_posix(), file.read_bytes()
        key = _sha("midi", hashlib.sha256(data).hexdigest(), DATA_VERSION, _code_fingerprint("mstoolkit.piece"))
        got, skipped = _cached_conversion(root / f"{key}.json", lambda: _convert_midi_file(name, data))
        for _, reason in skipped:
            _warn_skipped(name, reason)
        pieces.extend(p.replace(name=name) for p in got)  # the cache is shared by identical files
    return _non_empty(pieces, f"midi_folder {folder}")


# StyleBench v2: several kinds of music that music21 ships (each "query:N" takes the first N works of the
# query by corpus path). Why these: four-part chorales (v1, harmony written out), Renaissance vocal
# polyphony (Palestrina masses, Monteverdi madrigals: long notes, imitative voices, 4/2), folk melodies
# (the Essen collection: one line, the accompaniment styles must infer the chords), classical string
# quartet movements (Mozart, Haydn: fast figuration, wide range) and a rag (Joplin: syncopation).
STYLEBENCH_V2 = "bach/chorales+palestrina:120+monteverdi:30+essenFolksong:300+mozart+haydn+joplin"
# Held out of every v2 training run: O'Neill's 1850 Irish dance tunes (reels, jigs, hornpipes: a folk
# tradition and meters, 6/8 and 9/8, that v2's training collections barely have).
STYLEBENCH_V2_HELD_OUT = "oneills1850:200"
CORPUS_ALIASES = {"stylebench-v2": STYLEBENCH_V2, "stylebench-v2-held-out": STYLEBENCH_V2_HELD_OUT}
# A build with no train split (a held-out collection) is judged by the style classifier of the build it
# is held out from (bench.style_classifier): the judge never trains on the music it judges.
HELD_OUT_FROM = {"stylebench-v2-held-out": "stylebench-v2"}


def load_corpus(
    source: str | os.PathLike,
    limit: int | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[Piece]:
    """:func:`midi_folder` if ``source`` is an existing folder, else :func:`music21_corpus`; several
    sources joined by ``+``, each with an optional ``:N`` limit (``"bach/chorales+palestrina:120"``),
    or a name in :data:`CORPUS_ALIASES` (``"stylebench-v2"``). ``limit`` caps the total.

        >>> pieces = load_corpus("~/my_midi")  # doctest: +SKIP
        >>> pieces = load_corpus("essenFolksong:50+joplin")  # doctest: +SKIP
    """
    source = CORPUS_ALIASES.get(str(source), source)
    folder = Path(source).expanduser()
    if folder.is_dir():
        return midi_folder(folder, limit=limit, cache_dir=cache_dir, progress=progress)
    pieces: list[Piece] = []
    for part in str(source).split("+"):
        counted = re.fullmatch(r"(.+):(\d+)", part.strip())
        query, count = (counted.group(1), int(counted.group(2))) if counted else (part.strip(), None)
        if not query:
            raise UserError(f"corpus {str(source)!r}: an empty source between '+' signs")
        if Path(query).expanduser().is_dir():
            pieces += midi_folder(Path(query).expanduser(), limit=count, cache_dir=cache_dir, progress=progress)
        else:
            pieces += music21_corpus(query, count, cache_dir=cache_dir, progress=progress)
        if limit and len(pieces) >= limit:
            break
    return pieces[:limit] if limit else pieces


def rebar(piece: Piece, meter: str) -> Piece:
    """The same notes under one time signature ``meter`` (``"5/4"``): bar lines move, nothing else, as
    in a file written in that meter. StyleBench's meter augmentation, and the real-world set's odd meter.

        >>> rebar(Piece([Note(0, 12, 60)]), "5/4").time_signatures
        [TimeSignature(tick=0, numerator=5, denominator=4)]
    """
    numerator, denominator = parse_meter(meter)
    return piece.replace(time_signatures=[TimeSignature(0, numerator, denominator)])


def parse_meter(meter: str) -> tuple[int, int]:
    """``"5/4"`` -> ``(5, 4)``; UserError for anything that is not ``N/D`` with D a power of two.

        >>> parse_meter("7/8")
        (7, 8)
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(meter))
    numerator, denominator = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if numerator < 1 or denominator < 1 or denominator & (denominator - 1):
        raise UserError(f"meter {meter!r}: expected 'N/D' such as '5/4' (N >= 1, D a power of two)")
    return numerator, denominator


def collection_of(piece_name: str) -> str:
    """The collection a piece comes from: the first part of its corpus path (``"bach/bwv66.6"`` -> ``"bach"``).

        >>> collection_of("essenFolksong/altdeu10#6")
        'essenFolksong'
    """
    return piece_name.split("/", 1)[0] if "/" in piece_name else "(folder)"


# ----------------------------------------------------------------------------- windows and splits
def cut_windows(
    piece: Piece, n_bars: int = 4, *, min_notes: int = 8, max_windows: int | None = None
) -> list[tuple[int, Piece]]:
    """Non-overlapping windows of ``n_bars`` bars as ``(first_bar, window)``; sparse windows skipped.

    A window is kept if all its bars start before the piece ends (the last bar may be short) and
    it holds at least ``min_notes`` notes. Each window is named ``"<piece name>@<first bar>"``.

        >>> [b for b, _ in cut_windows(Piece([Note(t, 12, 60) for t in range(0, 48 * 8, 12)]), 4)]
        [0, 4]
    """
    if n_bars < 1:
        raise UserError(f"n_bars must be >= 1, got {n_bars}")
    n_total = len(piece.bar_starts()) if piece.notes else 0
    windows: list[tuple[int, Piece]] = []
    for first in range(0, n_total - n_bars + 1, n_bars):
        window = piece.slice_bars(first, n_bars)
        if len(window) >= min_notes:
            windows.append((first, window.replace(name=window_id(piece.name, first))))
            if max_windows is not None and len(windows) >= max_windows:
                break
    return windows


def window_id(piece_name: str, first_bar: int) -> str:
    """``"bach/bwv66.6@4"``: the window of ``piece_name`` that starts at bar ``first_bar`` (0-based)."""
    return f"{piece_name}@{first_bar}"


def piece_of(window: str) -> str:
    """The piece name of a window id (inverse of :func:`window_id`)."""
    return window.rpartition("@")[0]


def split_of(piece_name: str, seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for a piece, from a hash of ``(seed, piece_name)``.

    Each piece's split depends only on its own name and the seed, so adding or removing pieces
    never moves another piece to a different split. Split sizes match ``fractions`` on average.

        >>> split_of("bach/bwv66.6") in SPLITS
        True
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise UserError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    u = _unit_interval("split", seed, piece_name)
    return "train" if u < fractions[0] else "val" if u < fractions[0] + fractions[1] else "test"


# ----------------------------------------------------------------------------- a named style's reference
REFERENCE_BARS = 4  # the bars of a named style's reference: StyleBench's window (StyleBenchConfig.window_bars)


def style_reference(style: str, avoid: Piece | str | os.PathLike | None = None, *, bars: int = REFERENCE_BARS,
                    seed: int = 0) -> Piece:
    """The style reference of a named style, the one the CLI, the widgets, the live session and the
    notebooks use: the first ``bars`` bars of a shipped sample piece rendered in ``style`` (with
    ``seed``, as StyleBench renders), the first sample in name order that is not ``avoid``.

    Why: in StyleBench the reference is always a window of *another* piece in the target style, so the
    model learns to take the style and not the notes from it; a named style outside a build follows
    the same rule with the shipped samples. ``avoid`` is the content: a Piece, a sample name or a MIDI
    path, compared by name (a copy of a sample elsewhere still counts as that piece). The result keeps
    the sample's name. UserError for an unknown style.

        >>> reference = style_reference("swing", avoid="bwv66.6")
        >>> reference.name, len(reference.bar_starts())
        ('bwv248.23-2', 4)
        >>> style_reference("swing", avoid=reference).name
        'bwv269'
    """
    from mstoolkit.piece import load_piece, sample_paths
    from mstoolkit.styles import render_style

    if isinstance(avoid, Piece):
        avoid = avoid.name
    elif avoid is not None and Path(avoid).suffix.lower() in _MIDI_SUFFIXES:
        avoid = Path(avoid).stem
    samples = sample_paths()
    if not samples:
        raise FileNotFoundError("no shipped sample pieces to make a named style's reference from; give a "
                                "reference file instead")
    names = [name for name in sorted(samples) if name != avoid] or sorted(samples)
    return render_style(load_piece(samples[names[0]]).slice_bars(0, bars), style, seed=seed)


def reference_windows(n: int, bars: int, samples: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """``n`` windows ``(sample name, first bar)`` of ``bars`` bars from the shipped samples (all, or
    ``samples``), taking the first window of every sample before any second one, so that a few
    windows still span several pieces (a map of many references, notebook 05 and the GramExplorer).

        >>> reference_windows(3, 4)
        [('bwv248.23-2', 0), ('bwv269', 0), ('bwv304', 0)]
    """
    from mstoolkit.piece import load_piece, sample_paths

    paths = sample_paths()
    names = list(samples or sorted(paths))
    lengths = {name: len(load_piece(paths[name]).bar_starts()) for name in names}
    out: list[tuple[str, int]] = []
    first = 0
    while len(out) < n and any(first + bars <= count for count in lengths.values()):
        out += [(name, first) for name in names if first + bars <= lengths[name]][: n - len(out)]
        first += bars
    return out


# ----------------------------------------------------------------------------- StyleBench
@dataclass
class StyleBenchConfig:
    """Everything that defines a StyleBench build; JSON round trip with ``to_dict``/``from_dict``.

        >>> StyleBenchConfig.from_dict(StyleBenchConfig(window_bars=8).to_dict()).window_bars
        8
    """

    corpus: str = "bach/chorales"  # a music21 corpus query or a folder of MIDI files
    styles: tuple[str, ...] | None = None  # None: every registered style (styles.list_styles())
    window_bars: int = 4  # bars per content window (one training item)
    min_notes: int = 8  # windows with fewer notes are skipped
    max_windows_per_piece: int | None = None  # None: every window of every piece
    limit: int | None = None  # read at most this many pieces from the corpus
    seed: int = 0  # drives the split, the triplet sampling and the style renderers
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, val, test shares, split by piece
    triplets_per_window: int = 8  # train: distinct (style A, style B) pairs drawn per content window
    eval_triplets_per_window: int = 3  # val/test: the same, kept apart so train settings never move the test split
    max_eval_triplets: int | None = 300  # cap on val/test triplets: `mstoolkit bench` stays a few minutes
    max_transpose: int = 5  # train augmentation: a shift in [-5, 5] semitones (0 disables)
    # The reference's mel spectrogram (mstoolkit.audio.mel): sample rate, bands, hop and FFT size.
    sample_rate: int = 22050
    n_mels: int = 128
    hop_length: int = 512
    n_fft: int = 2048

    def __post_init__(self) -> None:
        self.styles = tuple(self.styles) if self.styles is not None else None
        self.split_fractions = tuple(self.split_fractions)
        split_of("", 0, self.split_fractions)  # validates the fractions
        if min(self.window_bars, self.triplets_per_window, self.eval_triplets_per_window) < 1:
            raise UserError("window_bars, triplets_per_window and eval_triplets_per_window must be >= 1")
        if self.max_transpose < 0:
            raise UserError(f"max_transpose must be >= 0, got {self.max_transpose}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "StyleBenchConfig":
        """Inverse of :meth:`to_dict`; an unknown key raises UserError naming it (:func:`mstoolkit.config.from_dict`)."""
        return from_dict(cls, data)

    def key(self) -> str:
        """A short hash naming this build's cache folder."""
        return _sha(json.dumps(self.to_dict(), sort_keys=True), DATA_VERSION, STYLEBENCH_VERSION)[:16]


@dataclass(frozen=True)
class Triplet:
    """One StyleBench item: ``content_id`` in ``style_a`` -> ``content_id`` in ``style_b``, given
    ``reference_id`` (a window of another piece) in ``style_b`` as the style reference."""

    content_id: str
    reference_id: str
    style_a: str
    style_b: str


@dataclass
class StyleBench:
    """Windows, splits and triplets of one build; renders pieces and reference mels on demand.

        >>> t = bench.triplets["test"][0]  # doctest: +SKIP
        >>> bench.content(t), bench.reference_mel(t).shape  # doctest: +SKIP
    """

    config: StyleBenchConfig  # with `styles` resolved to an explicit tuple
    windows: dict[str, Piece]  # window id -> plain (unrendered) window
    piece_splits: dict[str, str]  # piece name -> split
    triplets: dict[str, list[Triplet]]
    cache_dir: Path = field(default_factory=cache_dir)
    _mel_paths: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # (window, style, timbre, transpose) -> .npy

    @property
    def styles(self) -> tuple[str, ...]:
        return tuple(self.config.styles or ())

    @property
    def folder(self) -> Path:
        """Where this build keeps its split manifests and trained style classifier."""
        return self.cache_dir / "stylebench" / self.config.key()

    def window_ids(self, split: str) -> list[str]:
        return [w for w in self.windows if self.piece_splits[piece_of(w)] == split]

    def render(self, window: str, style: str, meter: str | None = None) -> Piece:
        """Window ``window`` rendered in ``style`` (deterministic: ``seed=config.seed``), re-barred into
        ``meter`` first if given (:func:`rebar`)."""
        from mstoolkit.styles import render_style

        piece = self.windows[window] if meter is None else rebar(self.windows[window], meter)
        return render_style(piece, style, seed=self.config.seed)

    def content(self, t: Triplet) -> Piece:
        return self.render(t.content_id, t.style_a)

    def target(self, t: Triplet) -> Piece:
        return self.render(t.content_id, t.style_b)

    def reference(self, t: Triplet) -> Piece:
        return self.render(t.reference_id, t.style_b)

    def reference_mel(self, t: Triplet, timbre: int = 0, transpose: int = 0) -> np.ndarray:
        """Log-mel ``(n_mels, frames)`` float32 of the reference's audio, cached on disk."""
        return self.mel(t.reference_id, t.style_b, timbre, transpose)

    def mel(self, window: str, style: str, timbre: int = 0, transpose: int = 0) -> np.ndarray:
        """Log-mel ``(n_mels, frames)`` of ``window`` rendered in ``style``; cached as float16 .npy.

        ``timbre`` 0 plays the style's own instruments; ``k >= 1`` re-instruments the render with the
        ``k``-th draw of :func:`mstoolkit.augment.with_timbre` (seeded by the build's seed, the window and
        the style), a training augmentation; ``transpose=N`` (only with ``timbre >= 1``) also moves that
        render by the ``k``-th random interval of at most ``N`` semitones (:func:`mstoolkit.augment.in_another_register`).
        The cache key hashes the rendered notes (programs and pitches included), the audio parameters
        and ``audio.py``'s source, so a changed style renderer, synthesizer or mel setting never serves a
        stale spectrogram.
        """
        from mstoolkit import audio

        if transpose and not timbre:
            raise ValueError(f"transpose={transpose!r} moves a redrawn reference: it needs timbre >= 1, got {timbre!r}")
        memo = (window, style, timbre, transpose)
        path = self._mel_paths.get(memo)
        if path is not None:
            return np.load(path).astype(np.float32)
        piece = self.render(window, style)
        if timbre:
            from mstoolkit.augment import in_another_register, with_timbre

            def seed(*extra) -> int:  # one per window, style and set; the cache key hashes the result
                return int(_sha(self.config.seed, window, style, timbre, *extra)[:12], 16)

            piece = with_timbre(piece, seed=seed())
            if transpose:  # its own draw: the interval independent of the instruments
                piece = in_another_register(piece, seed=seed("register"), max_semitones=transpose)
        c = self.config
        key = _sha(_piece_sha(piece), c.sample_rate, c.n_mels, c.hop_length, c.n_fft, DATA_VERSION,
                   _code_fingerprint("mstoolkit.audio"))[:24]
        path = self.cache_dir / "mels" / key[:2] / f"{key}.npy"
        if path.exists():
            self._mel_paths[memo] = path
            return np.load(path).astype(np.float32)
        wave = audio.render(piece, sample_rate=c.sample_rate)
        spec = audio.mel(wave, sample_rate=c.sample_rate, n_mels=c.n_mels, hop_length=c.hop_length, n_fft=c.n_fft)
        spec = np.asarray(spec, dtype=np.float16)  # (n_mels, frames); dB values, float16 is ample
        _write_atomic(path, _npy_bytes(spec))
        self._mel_paths[memo] = path
        return spec.astype(np.float32)

    def precompute_mels(self, split: str = "test", progress: bool = True) -> None:
        """Fill the mel cache for every reference of ``split`` (with a progress bar)."""
        from tqdm.auto import tqdm

        todo = sorted({(t.reference_id, t.style_b) for t in self.triplets[split]})
        for window, style in tqdm(todo, desc=f"reference mels ({split})", disable=not progress):
            self.mel(window, style)

    def summary(self) -> dict[str, dict[str, int]]:
        """Pieces, windows and triplets per split."""
        return {
            s: {
                "pieces": sum(1 for v in self.piece_splits.values() if v == s),
                "windows": len(self.window_ids(s)),
                "triplets": len(self.triplets[s]),
            }
            for s in SPLITS
        }

    def collection_summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """:meth:`summary` per collection (:func:`collection_of`): ``{collection: {split: counts}}``;
        a triplet counts for its content's collection."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for piece, split in self.piece_splits.items():
            row = out.setdefault(collection_of(piece), {s: {"pieces": 0, "windows": 0, "triplets": 0} for s in SPLITS})
            row[split]["pieces"] += 1
        for window in self.windows:
            piece = piece_of(window)
            out[collection_of(piece)][self.piece_splits[piece]]["windows"] += 1
        for split, triplets in self.triplets.items():
            for t in triplets:
                out[collection_of(piece_of(t.content_id))][split]["triplets"] += 1
        return out

    def manifest(self, split: str = "test") -> dict:
        """A JSON-ready description of ``split``'s exact triplets (see :func:`load_test_split`)."""
        import music21

        import mstoolkit

        used = sorted({w for t in self.triplets[split] for w in (t.content_id, t.reference_id)})
        return {
            "format": "mstoolkit.stylebench.split",
            "stylebench_version": STYLEBENCH_VERSION,
            "data_version": DATA_VERSION,
            "mstoolkit_version": mstoolkit.__version__,
            "music21_version": music21.__version__,
            "split": split,
            "seed": self.config.seed,
            "config": self.config.to_dict(),
            "pieces": sorted({piece_of(w) for w in used}),
            "windows": {
                w: {"piece": piece_of(w), "first_bar": int(w.rpartition("@")[2]),
                    "n_bars": self.config.window_bars, "sha": _piece_sha(self.windows[w])}
                for w in used
            },
            "triplets": [dataclasses.asdict(t) for t in self.triplets[split]],
        }

    def save_split(self, path: str | os.PathLike, split: str = "test") -> Path:
        """Write :meth:`manifest` of ``split`` to ``path`` as JSON; returns the path."""
        path = Path(path)
        _write_atomic(path, json.dumps(self.manifest(split), indent=1).encode())
        return path

    @property
    def test_split_path(self) -> Path:
        """The test manifest written by :func:`build_stylebench`."""
        return self.folder / "test_split.json"


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _sample_triplets(
    windows: list[str], styles: Sequence[str], per_window: int, seed: int, cap: int | None
) -> list[Triplet]:
    """``per_window`` triplets per window of one split, each from a generator seeded by the window id.

    References come from other pieces of the same split. With ``cap``, whole windows are kept in
    hash order until the cap is reached, so the kept set is a seeded random sample.
    """
    pairs = [(a, b) for a in styles for b in styles if a != b]
    by_window: dict[str, list[Triplet]] = {}
    owner = {w: piece_of(w) for w in windows}
    for w in windows:
        others = [r for r in windows if owner[r] != owner[w]]  # non-empty: checked by the caller
        rng = np.random.default_rng(int(_sha("triplets", seed, w)[:16], 16))
        chosen = rng.permutation(len(pairs))[:per_window]
        by_window[w] = [Triplet(w, others[rng.integers(len(others))], *pairs[i]) for i in chosen]
    order = sorted(windows, key=lambda w: _sha("order", seed, w))
    kept: set[str] = set()
    count = 0
    for w in order:
        if cap is not None and count >= cap:
            break
        kept.add(w)
        count += len(by_window[w])
    triplets = [t for w in windows if w in kept for t in by_window[w]]
    return triplets[:cap] if cap is not None else triplets


def _resolve_styles(styles: Sequence[str] | None) -> tuple[str, ...]:
    from mstoolkit.styles import list_styles

    known = list(list_styles())
    chosen = tuple(known if styles is None else styles)
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise UserError(f"unknown styles {unknown}; registered styles: {known}")
    if len(set(chosen)) < 2:
        raise UserError(f"StyleBench needs at least two distinct styles, got {list(chosen)}")
    return chosen


def build_stylebench(
    config: StyleBenchConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    pieces: Sequence[Piece] | None = None,
    progress: bool = True,
) -> StyleBench:
    """Load the corpus (cached), split it by piece, cut windows and sample triplets.

    ``pieces`` replaces the corpus named in the config (handy for hand-made pieces). The test
    manifest is written to ``bench.test_split_path``.

        >>> bench = build_stylebench(StyleBenchConfig(corpus="bach/chorales", window_bars=4))  # doctest: +SKIP
    """
    config = dataclasses.replace(config or StyleBenchConfig())
    config.styles = _resolve_styles(config.styles)
    root = _cache_root(cache_dir)
    if pieces is None:
        pieces = load_corpus(config.corpus, config.limit, cache_dir=root, progress=progress)
    bad_names = sorted(n for n, count in collections.Counter(p.name for p in pieces).items() if count > 1 or not n)
    if bad_names:
        raise UserError(f"pieces need distinct, non-empty names; duplicated or empty: {bad_names}")

    windows: dict[str, Piece] = {}
    piece_splits: dict[str, str] = {}
    for piece in sorted(pieces, key=lambda p: p.name):
        piece_splits[piece.name] = split_of(piece.name, config.seed, config.split_fractions)
        for _, window in cut_windows(
            piece, config.window_bars, min_notes=config.min_notes, max_windows=config.max_windows_per_piece
        ):
            windows[window.name] = window
    bench = StyleBench(config, windows, piece_splits, {}, root)
    for split, fraction in zip(SPLITS, config.split_fractions):
        ids = bench.window_ids(split)
        n_pieces = len({piece_of(w) for w in ids})
        if fraction > 0 and n_pieces < 2:
            raise UserError(
                f"the {split} split of {config.corpus!r} has windows from {n_pieces} piece(s) but needs 2 "
                f"(references come from another piece); {len(pieces)} pieces in all, seed {config.seed}: "
                "add pieces or change split_fractions/seed"
            )
        if split == "train":
            per_window, cap = config.triplets_per_window, None
        else:
            per_window, cap = config.eval_triplets_per_window, config.max_eval_triplets
        bench.triplets[split] = _sample_triplets(ids, config.styles, per_window, config.seed, cap)
    if bench.triplets["test"]:
        bench.save_split(bench.test_split_path, "test")
    return bench


def load_test_split(
    path: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    *,
    pieces: Sequence[Piece] | None = None,
    progress: bool = True,
) -> StyleBench:
    """Rebuild the StyleBench of a saved manifest, with its ``split`` replaced by the exact saved triplets.

    Raises ValueError if a saved window no longer matches the corpus (its notes' hash differs),
    e.g. after a music21 or converter change; warns if the versions differ but the windows match.

        >>> bench = load_test_split("stylebench_test.json")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a readable StyleBench split manifest ({e})") from e
    if manifest.get("format") != "mstoolkit.stylebench.split":
        raise UserError(f"{path}: not a StyleBench split manifest (format {manifest.get('format')!r})")
    if manifest["stylebench_version"] != STYLEBENCH_VERSION or manifest["data_version"] != DATA_VERSION:
        warnings.warn(
            f"{path} was saved with StyleBench {manifest['stylebench_version']} / data {manifest['data_version']}, "
            f"this is StyleBench {STYLEBENCH_VERSION} / data {DATA_VERSION}",
            UserWarning,
            stacklevel=2,
        )
    config = StyleBenchConfig.from_dict(manifest["config"])
    bench = build_stylebench(config, cache_dir, pieces=pieces, progress=progress)
    changed = [w for w, info in manifest["windows"].items()
               if w not in bench.windows or _piece_sha(bench.windows[w]) != info["sha"]]
    if changed:
        raise UserError(f"{path}: {len(changed)} saved windows differ from the corpus now, e.g. {changed[:3]}")
    bench.triplets[manifest["split"]] = [Triplet(**t) for t in manifest["triplets"]]
    return bench


# ----------------------------------------------------------------------------- Dataset / collate
class StyleBenchDataset(torch.utils.data.Dataset):
    """Token/mel items of one StyleBench split for a ``DataLoader`` (workers welcome).

    Each item is a dict: ``content_ids``, ``target_ids`` (LongTensor ``(T,)``, ``[BOS ... EOS]``),
    ``reference_mel`` (FloatTensor ``(n_mels, frames)``), ``style_a``/``style_b`` (indices into
    ``dataset.styles``), ``transpose`` (semitones applied), ``content_id``/``reference_id`` (str),
    and ``reference_ids`` if ``reference_tokens=True``.

    Augmentation (train split by default): content and target are transposed by the same random
    shift in ``[-max_transpose, max_transpose]``, narrowed so every pitch stays in 0-127; the
    reference is left alone, unless asked: ``reference_timbres=K`` plays it, with probability
    ``K / (K + 1)``, by one of ``K`` redrawn sets of instruments (:func:`mstoolkit.augment.with_timbre`),
    ``reference_transpose=N`` moves those redrawn references by up to ``N`` semitones too
    (:func:`mstoolkit.augment.in_another_register`: register is no longer a style cue),
    ``reference_room=True`` adds a random room and noise floor (:func:`mstoolkit.augment.room_and_noise`), and
    ``reference_spectrum=True`` other overtones and a colour (:func:`mstoolkit.augment.overtones_and_colour`).
    ``rebar_meters=("5/4", "7/4")`` with ``rebar_prob=p`` re-bars, with probability ``p``, a content window
    whose one meter is simple, in quarter notes or longer (4/4, 3/4, 4/2: not 6/8 or 6/4), into one of those meters
    (:func:`rebar`) before both styles are rendered, so a model meets the odd meters no corpus collection has.
    ``identity_prob=p`` gives, with probability ``p``, the target's own rendering as the content (``style_a``
    becomes ``style_b``): StyleBench's triplets always change the style, yet a user's file arrives plain
    (``transfer`` renders it "straight") and is often asked into the style it already has, so a model that
    never saw "same style in, same notes out" rewrites notes there that copying would keep
    (``benchmarks/results/real_world.md``, target straight). ``plain_content_prob=p`` gives, with probability
    ``p``, the window's "straight" rendering as the content (``style_a`` becomes ``"straight"``): the content
    ``transfer`` makes of every user's file, which StyleBench's triplets give in only one item in nine.
    Length: if content or target exceeds ``max_tokens``, both are cut to
    the longest common prefix of whole bars that fits; if one bar does not fit, ValueError.

        >>> ds = StyleBenchDataset(bench, "train", RemiTokenizer())  # doctest: +SKIP
        >>> loader = DataLoader(ds, batch_size=8, collate_fn=collate, num_workers=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        bench: StyleBench,
        split: str = "train",
        tokenizer=None,
        *,
        max_tokens: int = 1024,
        augment: bool | None = None,
        reference_tokens: bool = False,
        reference_timbres: int = 0,
        reference_room: bool = False,
        reference_spectrum: bool = False,
        reference_transpose: int = 0,
        rebar_meters: Sequence[str] = (),
        rebar_prob: float = 0.0,
        identity_prob: float = 0.0,
        plain_content_prob: float = 0.0,
    ) -> None:
        if split not in SPLITS:
            raise UserError(f"split must be one of {SPLITS}, got {split!r}")
        if tokenizer is None:
            from mstoolkit.tokenizer import RemiTokenizer

            tokenizer = RemiTokenizer()
        self.bench, self.split, self.tokenizer = bench, split, tokenizer
        self.triplets = bench.triplets[split]
        self.styles = bench.styles
        self.max_tokens = max_tokens
        self.augment = split == "train" if augment is None else augment
        self.reference_tokens = reference_tokens
        if not isinstance(reference_timbres, int) or reference_timbres < 0:
            raise UserError(f"reference_timbres must be an int >= 0, got {reference_timbres!r}")
        self.reference_timbres, self.reference_room = reference_timbres, reference_room
        self.reference_spectrum = reference_spectrum
        if not isinstance(reference_transpose, int) or reference_transpose < 0 or (reference_transpose and not reference_timbres):
            raise UserError(f"reference_transpose must be an int >= 0, and > 0 only with reference_timbres >= 1 (it "
                            f"moves the redrawn references); got {reference_transpose!r} with reference_timbres={reference_timbres!r}")
        self.reference_transpose = reference_transpose
        for meter in rebar_meters:
            parse_meter(meter)
        if not 0 <= rebar_prob <= 1 or (rebar_prob > 0 and not rebar_meters):
            raise UserError(f"rebar_prob must be in [0, 1], and > 0 only with rebar_meters; got {rebar_prob!r} "
                            f"with rebar_meters={tuple(rebar_meters)!r}")
        self.rebar_meters, self.rebar_prob = tuple(rebar_meters), float(rebar_prob)
        if not 0 <= identity_prob <= 1:
            raise UserError(f"identity_prob must be in [0, 1], got {identity_prob!r}")
        self.identity_prob = float(identity_prob)
        if not 0 <= plain_content_prob <= 1 or (plain_content_prob > 0 and "straight" not in self.styles):
            raise UserError(f"plain_content_prob must be in [0, 1], and > 0 only when the build has the 'straight' "
                            f"style; got {plain_content_prob!r} with styles {list(self.styles)}")
        self.plain_content_prob = float(plain_content_prob)

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, index: int) -> dict:
        t = self.triplets[index]
        meter = self._random_meter(t.content_id) if self.augment else None  # None: the window's own bars
        # No draw at p = 0, so runs without the option keep their random streams (and their results).
        same = self.augment and self.identity_prob > 0 and float(torch.rand(())) < self.identity_prob
        plain = (self.augment and not same and self.plain_content_prob > 0
                 and float(torch.rand(())) < self.plain_content_prob)
        style_a = t.style_b if same else "straight" if plain else t.style_a
        target = self.bench.render(t.content_id, t.style_b, meter)
        content = target if style_a == t.style_b else self.bench.render(t.content_id, style_a, meter)
        shift = self._random_shift(content, target) if self.augment else 0
        if shift:
            content, target = content.transpose(shift), target.transpose(shift)
        content_ids, target_ids = self._encode_pair(content, target, t.content_id)
        item = {
            "content_ids": torch.tensor(content_ids, dtype=torch.long),
            "target_ids": torch.tensor(target_ids, dtype=torch.long),
            "reference_mel": self._reference_mel(t),
            "style_a": self.styles.index(style_a),
            "style_b": self.styles.index(t.style_b),
            "transpose": shift,
            "content_id": t.content_id,
            "reference_id": t.reference_id,
        }
        if self.reference_tokens:
            item["reference_ids"] = torch.tensor(self.tokenizer.encode(self.bench.reference(t)), dtype=torch.long)
        return item

    def _reference_mel(self, t: Triplet) -> torch.Tensor:
        """``(n_mels, frames)``; the timbre and room draws use torch's RNG (seeded per item in training)."""
        timbre = int(torch.randint(0, self.reference_timbres + 1, ()).item()) if self.reference_timbres else 0
        mel = torch.from_numpy(self.bench.reference_mel(t, timbre, self.reference_transpose if timbre else 0))
        if self.reference_room:
            from mstoolkit.augment import room_and_noise

            mel = room_and_noise(mel)
        if self.reference_spectrum:  # after the room: the microphone and the file colour the room's sound too
            from mstoolkit.augment import overtones_and_colour

            mel = overtones_and_colour(mel)
        return mel

    def lengths(self, progress: bool = False) -> list[int]:
        """Content + target tokens of each triplet (before the ``max_tokens`` cut), for batching by
        length; cached on disk by the build, the tokenizer settings and the code that renders and encodes.

            >>> ds.lengths()[:3]  # doctest: +SKIP
            [512, 367, 644]
        """
        key = _sha(json.dumps(self.tokenizer.config.to_dict(), sort_keys=True), self.split,
                   _code_fingerprint("mstoolkit.styles"), _code_fingerprint("mstoolkit.tokenizer"))[:16]
        path = self.bench.folder / f"token_lengths_{key}.json"
        if path.exists():
            return json.loads(path.read_text())
        pairs = sorted({(w, s) for t in self.triplets for w, s in ((t.content_id, t.style_a), (t.content_id, t.style_b))})
        counts = {pair: len(self.tokenizer.encode(self.bench.render(*pair)))
                  for pair in _progress(pairs, f"token lengths ({self.split})", progress)}
        lengths = [counts[t.content_id, t.style_a] + counts[t.content_id, t.style_b] for t in self.triplets]
        _write_atomic(path, json.dumps(lengths).encode())
        return lengths

    def _random_meter(self, window: str) -> str | None:
        """A meter from ``rebar_meters`` with probability ``rebar_prob`` (torch's RNG), else None; None too
        for windows with a meter change, a beat shorter than a quarter (6/8, 3/8) or a compound meter (6/4)."""
        if not self.rebar_prob or float(torch.rand(())) >= self.rebar_prob:
            return None
        meter = self.rebar_meters[int(torch.randint(len(self.rebar_meters), ()))]
        signatures = self.bench.windows[window].time_signatures
        simple = len(signatures) == 1 and signatures[0].denominator <= 4 and signatures[0].numerator not in (6, 9, 12)
        return meter if simple else None

    def _random_shift(self, *pieces: Piece) -> int:
        pitches = [n.pitch for p in pieces for n in p.notes if not n.is_drum]
        k = self.bench.config.max_transpose
        low, high = max(-k, -min(pitches, default=0)), min(k, 127 - max(pitches, default=127))
        # torch's generator is reseeded per worker and per epoch by the DataLoader
        return int(torch.randint(low, high + 1, ()).item()) if high >= low else 0

    def _encode_pair(self, content: Piece, target: Piece, name: str) -> tuple[list[int], list[int]]:
        encode = self.tokenizer.encode
        content_ids, target_ids = encode(content), encode(target)
        n_bars = self.bench.config.window_bars
        while max(len(content_ids), len(target_ids)) > self.max_tokens:
            n_bars -= 1
            if n_bars == 0:
                raise UserError(f"window {name}: one bar needs more than max_tokens={self.max_tokens} tokens")
            content_ids, target_ids = encode(content.slice_bars(0, n_bars)), encode(target.slice_bars(0, n_bars))
        return content_ids, target_ids


def _pad(seqs: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids ``(B, T_max)``, key padding mask ``(B, T_max)`` True at padding)."""
    ids = pad_sequence(seqs, batch_first=True, padding_value=pad_id)  # (B, T_max)
    lengths = torch.tensor([len(s) for s in seqs])
    mask = torch.arange(ids.shape[1])[None, :] >= lengths[:, None]  # (B, T_max)
    return ids, mask


def collate(batch: list[dict], pad_id: int = 0, mel_frames: int = MEL_FRAMES) -> dict:
    """Stack :class:`StyleBenchDataset` items into a batch (a plain function: picklable for workers).

    Token ids are right-padded with ``pad_id`` to the batch's longest sequence; ``*_padding_mask``
    is True at padding (PyTorch's ``key_padding_mask`` convention). Reference mels are cropped or
    padded to ``mel_frames`` frames (padding uses each mel's own minimum, i.e. silence);
    ``reference_frames`` holds the number of real frames.

        >>> loader = DataLoader(dataset, batch_size=8, collate_fn=collate)  # doctest: +SKIP
    """
    out: dict = {}
    for key in ("content_ids", "target_ids", "reference_ids"):
        if key in batch[0]:
            ids, mask = _pad([b[key] for b in batch], pad_id)
            out[key], out[key.replace("_ids", "_padding_mask")] = ids, mask
    mels = []
    for b in batch:
        m = b["reference_mel"][:, :mel_frames]  # (n_mels, <= mel_frames)
        pad = mel_frames - m.shape[1]
        mels.append(torch.nn.functional.pad(m, (0, pad), value=float(m.min())) if pad else m)
    out["reference_mel"] = torch.stack(mels)  # (B, n_mels, mel_frames)
    out["reference_frames"] = torch.tensor([min(b["reference_mel"].shape[1], mel_frames) for b in batch])
    for key in ("style_a", "style_b", "transpose"):
        out[key] = torch.tensor([b[key] for b in batch], dtype=torch.long)  # (B,)
    for key in ("content_id", "reference_id"):
        out[key] = [b[key] for b in batch]
    return out
