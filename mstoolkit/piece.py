"""`Piece`: the one in-memory music type of mstoolkit, and its converters.

Every note lives on a tick grid of ``TICKS_PER_QUARTER = 12`` ticks per quarter note, so
sixteenths (3 ticks), eighth-note triplets (4 ticks) and swing long-short pairs (8 + 4 ticks)
are all exact integers.

    >>> p = Piece([Note(start=0, duration=12, pitch=60, velocity=80)])
    >>> p.end_tick
    12

Converters: :func:`load_piece` (path, bytes, ``Piece``, ``pretty_midi.PrettyMIDI`` or music21
stream), ``Piece.from_midi`` / ``to_midi_bytes`` / ``save_midi``, ``Piece.from_pretty_midi`` /
``to_pretty_midi`` and ``Piece.from_music21`` / ``to_music21``.

Snapping to the grid (the same rule for every input):

* MIDI and ``PrettyMIDI``: every time (note on, note off, tempo change, time signature) is
  taken in MIDI ticks -- for a file these are the ticks stored in it; for a ``PrettyMIDI`` built
  in code its seconds are turned into ticks of its own resolution with its own tempo map -- and
  then converted to grid ticks as ``midi_ticks * 12 / resolution`` rounded to the nearest
  integer, halves rounded up. Positions are counted in quarter notes, so the tempo never moves
  a note on the grid. music21: offsets and durations in quarter notes, times 12, rounded the
  same way.
* Start and end are rounded separately; a note that would last 0 ticks lasts 1 tick.
* Notes with the same start, pitch, program and drum flag are merged into one (the longest
  duration, the highest velocity); a note that still sounds when the next note of the same
  pitch, program and drum flag starts is cut at that start (MIDI cannot hold both).
* Tempo changes and time signatures that land on the same grid tick keep the last one; a
  change that repeats the value in force is dropped. (These two rules are
  :meth:`Piece.normalize`, which the writers apply too.) A tempo read from MIDI is rounded to
  0.001 bpm; with no tempo event the tempo is 120 bpm, with no time signature 4/4.
* Velocity is kept (music21 notes without a velocity get 80); each MIDI instrument gives its
  program and drum flag (channel 10); music21 parts without a MIDI program get program 0.
* The first key signature, if any, becomes ``key``, e.g. ``"C major"`` or ``"f# minor"``
  (tonic upper case for major, lower case for minor).
* MIDI files: tempo, time-signature and key events are read from every track; a note-on with
  velocity 0 is a note-off; a note that is never switched off is dropped.
* music21: repeats are written out, tied notes merged, grace notes skipped, and a pickup bar is
  padded with a leading rest so that bar lines fall where the score has them.

Unreadable, truncated, empty, non-MIDI or out-of-range input and input without any note raise
:class:`MidiError` naming the source (file name, ``"<bytes>"`` or the given ``name``) and the
reason. ``Piece([])`` built in code is allowed.

Reading MIDI: files are parsed by symusic (C++, the reader MidiTok uses). Where symusic is not
installed, where it rejects a file, or where what it reads fails a check (tracks missing from a
truncated file, no notes, a zero tempo, a time beyond 10 million MIDI ticks, a value out of
range), the fallback reader -- mido + pretty_midi, pure Python, about 10x slower -- reads the file
again and either returns the piece or raises the :class:`MidiError` with the reason. The two
readers agree on files in which no two notes of one pitch overlap on a channel (every file
:meth:`Piece.to_midi_bytes` writes, for one). Where such notes do overlap, symusic pairs note-ons
with note-offs first in, first out, while pretty_midi ends all of them at the first note-off;
the readers also differ for a program change while a note sounds (symusic takes the program at
the note-on, pretty_midi at the note-off) and for a note-off at its note-on's tick (symusic gives
a note of 1 grid tick, pretty_midi drops the note).

Writing MIDI: :meth:`Piece.to_midi_bytes` encodes the file itself, byte for byte what mido writes
for the same messages.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import itertools
import math
import operator
import os
import re
import struct
import sys
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Union

import numpy as np

if TYPE_CHECKING:  # imported inside the functions that need them: music21 is slow to import, and
    import mido  # the model code must import (via mstoolkit/__init__) with only torch and numpy
    import music21
    import pretty_midi

TICKS_PER_QUARTER = 12
MIDI_RESOLUTION = 480  # MIDI ticks per quarter note in written files: 40 per grid tick

MidiSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


class MidiError(ValueError):
    """Raised for unreadable, truncated, empty or non-MIDI input; the message names the source."""


@dataclass(frozen=True, order=True)
class Note:
    """One note. Times are grid ticks (12 per quarter note)."""

    start: int
    duration: int
    pitch: int
    velocity: int = 80
    program: int = 0  # General MIDI program 0-127 (ignored for drums)
    is_drum: bool = False

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(frozen=True, order=True)
class TempoChange:
    tick: int
    bpm: float


@dataclass(frozen=True, order=True)
class TimeSignature:
    tick: int
    numerator: int
    denominator: int

    @property
    def bar_ticks(self) -> int:
        """Length of one bar in ticks, e.g. 48 for 4/4, 36 for 6/8."""
        return self.numerator * TICKS_PER_QUARTER * 4 // self.denominator


# the order of ``Note``'s fields (how ``order=True`` compares notes), as a fast sort key
_note_order = operator.attrgetter(*(f.name for f in dataclasses.fields(Note)))


def _default_tempos() -> list[TempoChange]:
    return [TempoChange(0, 120.0)]


def _default_time_signatures() -> list[TimeSignature]:
    return [TimeSignature(0, 4, 4)]


@dataclass
class Piece:
    """Notes on the tick grid plus a tempo map, time signatures and (if known) a key.

    Invariants (checked by :meth:`validate`): notes sorted, ``duration >= 1``, pitch and velocity
    in 0-127 (velocity >= 1), tempo and time-signature lists sorted, non-empty, starting at tick 0.
    """

    notes: list[Note] = field(default_factory=list)
    tempos: list[TempoChange] = field(default_factory=_default_tempos)
    time_signatures: list[TimeSignature] = field(default_factory=_default_time_signatures)
    key: str | None = None  # e.g. "C major", "a minor"; None when unknown
    name: str = ""

    def __post_init__(self) -> None:
        self.notes = sorted(self.notes, key=_note_order)
        self.tempos = sorted(self.tempos) or _default_tempos()
        self.time_signatures = sorted(self.time_signatures) or _default_time_signatures()

    # ----------------------------------------------------------------- basic facts
    @property
    def end_tick(self) -> int:
        """Tick just after the last note ends (0 for an empty piece)."""
        return max((n.end for n in self.notes), default=0)

    def __len__(self) -> int:
        return len(self.notes)

    def replace(self, **changes) -> "Piece":
        """A copy with some fields replaced, e.g. ``piece.replace(notes=new_notes)``."""
        return dataclasses.replace(self, **changes)

    def bar_starts(self, until: int | None = None) -> list[int]:
        """Tick of every bar start up to ``until`` (default: the end of the last note).

        A time-signature change takes effect at the next bar line at or after its tick.
        """
        until = self.end_tick if until is None else until
        starts: list[int] = []
        tick, ts_index = 0, 0
        sigs = self.time_signatures
        while tick < until or not starts:
            while ts_index + 1 < len(sigs) and sigs[ts_index + 1].tick <= tick:
                ts_index += 1
            starts.append(tick)
            tick += sigs[ts_index].bar_ticks
        return starts

    def time_signature_at(self, tick: int) -> TimeSignature:
        current = self.time_signatures[0]
        for ts in self.time_signatures:
            if ts.tick <= tick:
                current = ts
        return current

    def tempo_at(self, tick: int) -> float:
        current = self.tempos[0].bpm
        for t in self.tempos:
            if t.tick <= tick:
                current = t.bpm
        return current

    def tick_to_seconds(self, tick: int) -> float:
        """Wall-clock time of ``tick`` under the tempo map."""
        seconds, last_tick, bpm = 0.0, 0, self.tempos[0].bpm
        for t in self.tempos[1:]:
            if t.tick >= tick:
                break
            seconds += (t.tick - last_tick) * 60.0 / (bpm * TICKS_PER_QUARTER)
            last_tick, bpm = t.tick, t.bpm
        return seconds + (tick - last_tick) * 60.0 / (bpm * TICKS_PER_QUARTER)

    @property
    def duration_seconds(self) -> float:
        return self.tick_to_seconds(self.end_tick)

    def validate(self, source: str = "piece") -> "Piece":
        """Raise :class:`MidiError` naming ``source`` if an invariant is broken; return self."""
        for n in self.notes:
            if n.start < 0 or n.duration < 1:
                raise MidiError(f"{source}: note {n} has a negative start or a duration < 1 tick")
            if not (0 <= n.pitch <= 127 and 1 <= n.velocity <= 127 and 0 <= n.program <= 127):
                raise MidiError(f"{source}: note {n} has pitch/velocity/program out of MIDI range")
        if self.tempos[0].tick != 0 or self.time_signatures[0].tick != 0:
            raise MidiError(f"{source}: tempo map and time signatures must start at tick 0")
        for t in self.tempos:
            if not t.bpm > 0:
                raise MidiError(f"{source}: tempo {t.bpm} bpm at tick {t.tick} is not positive")
        for ts in self.time_signatures:
            if ts.numerator < 1 or ts.denominator not in (1, 2, 4, 8, 16, 32):
                raise MidiError(f"{source}: time signature {ts.numerator}/{ts.denominator} is not supported")
        if self.key is not None and _parse_key(self.key) is None:
            raise MidiError(f"{source}: key {self.key!r} is not written like 'C major' or 'f# minor'")
        return self

    def normalize(self) -> "Piece":
        """The piece as every converter returns it (rules in the module docstring).

        Notes with the same start, pitch, program and drum flag are merged, a note still
        sounding when the next one of the same pitch, program and drum flag starts is cut there,
        and tempo / time-signature changes that repeat the value in force are dropped.

            >>> Piece([Note(0, 12, 60), Note(0, 6, 60, velocity=99)]).normalize().notes
            [Note(start=0, duration=12, pitch=60, velocity=99, program=0, is_drum=False)]
        """
        return Piece(
            _tidy_notes(self.notes),
            _tidy_changes(self.tempos, lambda t: t.bpm),
            _tidy_changes(self.time_signatures, lambda ts: (ts.numerator, ts.denominator)),
            self.key,
            self.name,
        )

    def transpose(self, semitones: int) -> "Piece":
        """Shift every pitched (non-drum) note; raises MidiError if a pitch would leave 0-127."""
        moved = [n if n.is_drum else dataclasses.replace(n, pitch=n.pitch + semitones) for n in self.notes]
        return self.replace(notes=moved).validate(f"{self.name or 'piece'} transposed by {semitones}")

    def slice_ticks(self, start: int, end: int) -> "Piece":
        """Notes starting in ``[start, end)``, shifted so ``start`` becomes tick 0 (durations clipped)."""
        notes = [
            dataclasses.replace(n, start=n.start - start, duration=min(n.duration, end - n.start))
            for n in self.notes
            if start <= n.start < end
        ]
        tempos = [TempoChange(0, self.tempo_at(start))] + [
            TempoChange(t.tick - start, t.bpm) for t in self.tempos if start < t.tick < end
        ]
        ts0 = self.time_signature_at(start)
        sigs = [TimeSignature(0, ts0.numerator, ts0.denominator)] + [
            TimeSignature(ts.tick - start, ts.numerator, ts.denominator)
            for ts in self.time_signatures
            if start < ts.tick < end
        ]
        return Piece(notes, tempos, sigs, self.key, self.name)

    def slice_bars(self, first_bar: int, n_bars: int) -> "Piece":
        """Bars ``first_bar .. first_bar + n_bars - 1`` as a new piece starting at tick 0."""
        starts = self.bar_starts(self.end_tick + 4 * 4 * TICKS_PER_QUARTER * (first_bar + n_bars + 1))
        return self.slice_ticks(starts[first_bar], starts[first_bar + n_bars])

    @classmethod
    def from_notes(cls, notes: Iterable[Note], **kwargs) -> "Piece":
        return cls(list(notes), **kwargs)

    # ----------------------------------------------------------------- converters
    @classmethod
    def from_midi(cls, source: MidiSource, name: str | None = None) -> "Piece":
        """Read a standard MIDI file (path, bytes or binary file object), snapped to the grid.

        Every time is taken in the file's MIDI ticks and becomes ``round(ticks * 12 /
        resolution)`` grid ticks (halves up), so the tempo never moves a note; the full rule is in
        the module docstring. ``name`` defaults to the file's stem (for bytes: the name of
        track 0, else ""). Parsed by symusic (C++), with mido + pretty_midi as the fallback (see
        "Reading MIDI" in the module docstring). Raises :class:`MidiError` naming the source for
        empty, garbage, truncated, non-MIDI or out-of-range input and for a file without notes.

            >>> piece = Piece.from_midi(sample_paths()["bwv66.6"])
        """
        return read_midi(source, name)[0]

    def to_midi_bytes(self) -> bytes:
        """A type-1 standard MIDI file at 480 ticks per quarter note (40 per grid tick).

        Track 0 holds the name, tempo map, time signatures and key; then one track per
        ``(program, is_drum)``, drums on channel 10. The notes written are those of
        :meth:`normalize`, so ``Piece.from_midi(p.to_midi_bytes()) == p.normalize()`` (tempi to
        0.001 bpm).

            >>> data = Piece([Note(0, 12, 60)]).to_midi_bytes()
        """
        return _to_midi_bytes(self)

    def save_midi(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_midi_bytes` to ``path`` and return it as a ``Path``.

            >>> piece.save_midi("out.mid")  # doctest: +SKIP
        """
        path = Path(path)
        path.write_bytes(self.to_midi_bytes())
        return path

    @classmethod
    def from_pretty_midi(cls, pm: "pretty_midi.PrettyMIDI", name: str | None = None) -> "Piece":
        """Snap a ``PrettyMIDI`` object to the grid: its seconds become ticks of its own resolution
        (through its tempo map), then grid ticks, as in :meth:`from_midi`.

            >>> piece = Piece.from_pretty_midi(pretty_midi.PrettyMIDI("song.mid"))  # doctest: +SKIP
        """
        return _from_pretty_midi(pm, name or "", name or "<PrettyMIDI>")

    def to_pretty_midi(self) -> "pretty_midi.PrettyMIDI":
        """The piece as a ``PrettyMIDI`` object (parsed from :meth:`to_midi_bytes`).

            >>> pm = Piece([Note(0, 12, 60)]).to_pretty_midi()
        """
        import pretty_midi

        return pretty_midi.PrettyMIDI(io.BytesIO(self.to_midi_bytes()))

    @classmethod
    def from_music21(cls, stream: "music21.stream.Stream", name: str | None = None) -> "Piece":
        """Read a music21 ``Score``, ``Part`` or any ``Stream``.

        Repeats are written out (as music21's MIDI export does), tied notes become one note,
        chords become their notes, rests and grace notes are skipped. Each part's instrument
        gives the program (0 when it has no MIDI program) and drum flag (MIDI channel 10 or
        unpitched percussion). A pickup bar is padded with a leading rest so that bar lines fall
        where the score has them. Offsets are snapped to the grid by rounding
        ``quarter_length * 12`` (halves up). The name defaults to the score's title.

            >>> from music21 import corpus  # doctest: +SKIP
            >>> piece = Piece.from_music21(corpus.parse("bach/bwv66.6"))  # doctest: +SKIP
        """
        return _from_music21(stream, name)

    def to_music21(self) -> "music21.stream.Score":
        """A music21 ``Score``: one ``Part`` per ``(program, is_drum)`` with its instrument, notes and
        chords (notes sharing start and duration) at their offsets, time signatures, key and
        metronome marks. Parts are not split into measures; music21 does that when it shows or
        writes the score (or call ``score.makeNotation()``). ``Piece.from_music21(p.to_music21())
        == p.normalize()``.

            >>> score = Piece([Note(0, 12, 60)]).to_music21()
        """
        return _to_music21(self)


# --------------------------------------------------------------------------- loading
def load_piece(x: Any, *, name: str | None = None) -> Piece:
    """Turn anything musical into a :class:`Piece`: a path (str or ``Path``), MIDI bytes or binary
    file object, a ``Piece`` (returned as is, renamed if ``name`` is given), a
    ``pretty_midi.PrettyMIDI`` or a music21 stream (``Score``, ``Part``, ``Stream``).

        >>> piece = load_piece(sample_paths()["bwv66.6"])
    """
    if isinstance(x, Piece):
        return x if name is None else x.replace(name=name)
    if isinstance(x, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(x, "read"):
        return Piece.from_midi(x, name)
    # a PrettyMIDI or music21 object means its library is imported already
    pm_module = sys.modules.get("pretty_midi")
    if pm_module is not None and isinstance(x, pm_module.PrettyMIDI):
        return Piece.from_pretty_midi(x, name)
    m21_stream = sys.modules.get("music21.stream")
    if m21_stream is not None and isinstance(x, m21_stream.Stream):
        return Piece.from_music21(x, name)
    raise TypeError(
        f"load_piece: cannot load a {type(x).__name__}; give a path, MIDI bytes, a Piece, "
        "a pretty_midi.PrettyMIDI or a music21 stream"
    )


def samples_dir() -> Path:
    """The folder of the shipped sample MIDI files (see its README): the repository's ``data_samples/``,
    installed as ``mstoolkit.data_samples`` (found by :func:`mstoolkit.shipped.shipped_root`).

        >>> (samples_dir() / "README.md").exists()
        True
    """
    from mstoolkit.shipped import shipped_root

    return shipped_root()


def sample_paths() -> dict[str, Path]:
    """The sample MIDI files by name, e.g. ``sample_paths()["bwv66.6"]``.

        >>> "bwv66.6" in sample_paths()
        True
    """
    return {path.stem: path for path in sorted(samples_dir().glob("*.mid"))}


# --------------------------------------------------------------------------- grid rules
def _round_half_up(x: Fraction | int) -> int:
    return math.floor(x + Fraction(1, 2))


def _tidy_notes(notes: Iterable[Note]) -> list[Note]:
    """Merge notes sharing (start, pitch, program, is_drum); cut same-pitch overlaps."""
    return _table_notes(_tidy_table(_note_table(notes)))


def _note_table(notes: Iterable[Note]) -> np.ndarray:
    """Notes as a table (N, 6) of program, is_drum, pitch, start, duration, velocity."""
    rows = [(n.program, n.is_drum, n.pitch, n.start, n.duration, n.velocity) for n in notes]
    return np.array(rows, dtype=np.int64).reshape(-1, 6)


def _table_notes(table: np.ndarray) -> list[Note]:
    return [Note(start, duration, pitch, velocity, program, bool(is_drum))
            for program, is_drum, pitch, start, duration, velocity in table.tolist()]


def _tidy_table(table: np.ndarray) -> np.ndarray:
    """The note rules of :meth:`Piece.normalize` on a note table (N, 6) (see :func:`_note_table`):
    rows sharing program, is_drum, pitch and start merge into one (the longest duration, the
    highest velocity); a note still sounding when the next one of its program, is_drum and pitch
    starts is cut there. The rows come back sorted by program, is_drum, pitch, start."""
    if not len(table):
        return table
    table = table[np.lexsort(table[:, 3::-1].T)]  # (N, 6) by program, is_drum, pitch, start
    firsts = np.flatnonzero(np.r_[True, (table[1:, :4] != table[:-1, :4]).any(axis=1)])  # (M,) of each merge
    tidy = table[firsts]  # (M, 6)
    tidy[:, 4] = np.maximum.reduceat(table[:, 4], firsts)  # longest duration
    tidy[:, 5] = np.maximum.reduceat(table[:, 5], firsts)  # highest velocity
    next_start = np.r_[tidy[1:, 3], 0]  # (M,) start of the next row
    same_line = np.r_[(tidy[1:, :3] == tidy[:-1, :3]).all(axis=1), False]  # (M,) next row: same program, drum, pitch
    cut = same_line & (tidy[:, 3] + tidy[:, 4] > next_start)  # (M,)
    tidy[cut, 4] = next_start[cut] - tidy[cut, 3]
    return tidy


def _tidy_changes(changes: Iterable, value: Callable) -> list:
    """Sort by tick; the last change at a tick wins; drop changes that repeat the value in force."""
    at_tick = {}
    for change in changes:
        at_tick[change.tick] = change
    tidy: list = []
    for tick in sorted(at_tick):
        if not tidy or value(tidy[-1]) != value(at_tick[tick]):
            tidy.append(at_tick[tick])
    return tidy


# --------------------------------------------------------------------------- keys
_KEY_RE = re.compile(r"([A-Ga-g])([#b]?) (major|minor)", re.IGNORECASE)
_MAJOR_TONICS = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_TONICS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
# the tonics MIDI key signatures spell, by sharps + 7 (sharps -7..7, flats negative)
_MAJOR_BY_SHARPS = ["Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#"]
_MINOR_BY_SHARPS = ["Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#"]


def _parse_key(key: str) -> tuple[str, bool] | None:
    """'Bb major' -> ('Bb', False); 'f# minor' -> ('F#', True); None if not a key name."""
    m = _KEY_RE.fullmatch(key)
    return (m[1].upper() + m[2], m[3].lower() == "minor") if m else None


def _pitch_class(tonic: str) -> int:
    base = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[tonic[0]]
    return (base + {"#": 1, "b": -1, "": 0}[tonic[1:]]) % 12


def _key_name(pitch_class: int, minor: bool, spelling: str | None = None) -> str:
    """'F# major', 'c# minor': ``spelling`` (e.g. 'Bb') if it is a plain tonic, else a default one."""
    if spelling is None or not re.fullmatch(r"[A-G][#b]?", spelling):
        spelling = (_MINOR_TONICS if minor else _MAJOR_TONICS)[pitch_class % 12]
    return f"{spelling.lower()} minor" if minor else f"{spelling} major"


def _key_sharps(key: str) -> tuple[int, int]:
    """'Bb major' -> (-2, 0), 'f# minor' -> (3, 1): the sharps (flats < 0) and mode of a MIDI key
    signature; a tonic no key signature spells (e.g. 'A#' major) is written as its enharmonic ('Bb')."""
    tonic, minor = _parse_key(key)
    spellings = _MINOR_BY_SHARPS if minor else _MAJOR_BY_SHARPS
    if tonic not in spellings:
        tonic = (_MINOR_TONICS if minor else _MAJOR_TONICS)[_pitch_class(tonic)]
    return spellings.index(tonic) - 7, int(minor)


# --------------------------------------------------------------------------- MIDI in
_CONDUCTOR_EVENTS = ("set_tempo", "time_signature", "key_signature")
_MAX_MIDI_TICK = 10_000_000  # pretty_midi's limit: a later time means a corrupt file


def read_midi(source: MidiSource, name: str | None = None) -> tuple["Piece", bytes, str]:
    """(the piece, the file's bytes, a label for messages) of a path, bytes or binary file object:
    :meth:`Piece.from_midi` for callers that also read the bytes another way (``mstoolkit.intake`` gives
    them to pretty_midi for exact note times; a file object can be read only once).

        >>> piece, data, label = read_midi(sample_paths()["bwv66.6"])
        >>> data[:4], piece.name
        (b'MThd', 'bwv66.6')
    """
    data, label, default_name = _read_source(source, name)
    return _from_midi_bytes(data, label, name if name is not None else default_name), data, label


def _read_source(source: MidiSource, name: str | None) -> tuple[bytes, str, str]:
    """(data, label for messages, default piece name) of a path, bytes or binary file object."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<bytes>", ""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return path.read_bytes(), str(path), path.stem
        except OSError as e:
            raise MidiError(f"{path}: cannot read the file ({e.strerror or e})") from e
    if hasattr(source, "read"):
        label = name or str(getattr(source, "name", "<file>"))
        try:
            data = source.read()
        except OSError as e:
            raise MidiError(f"{label}: cannot read the file ({e})") from e
        if not isinstance(data, bytes):
            raise TypeError(f"{label}: the file object gave {type(data).__name__}, open it in binary mode ('rb')")
        return data, label, Path(str(source.name)).stem if hasattr(source, "name") else ""
    raise TypeError(f"from_midi: expected a path, bytes or a binary file object, got {type(source).__name__}")


def _from_midi_bytes(data: bytes, label: str, name: str) -> Piece:
    if not data:
        raise MidiError(f"{label}: empty input (0 bytes), not a MIDI file")
    if not data.startswith(b"MThd"):
        raise MidiError(f"{label}: not a MIDI file (it starts with {data[:8]!r}, not the 'MThd' header)")
    piece = _from_midi_symusic(data, label, name)
    return piece if piece is not None else _from_midi_mido(data, label, name)


def _from_midi_symusic(data: bytes, label: str, name: str) -> Piece | None:
    """The piece read by symusic (C++), or None where symusic is not installed, rejects the data or
    gives a score that fails a check: then the mido reader reads the file or names the reason."""
    try:
        import symusic
    except ImportError:
        return None
    chunks = _track_chunks(data)
    if chunks is None:  # truncated: symusic may read the tracks that are there without a word
        return None
    try:
        score = symusic.Score.from_midi(data)
    except Exception:  # symusic raises RuntimeError in its own words for any damage
        return None
    tpq = score.tpq
    tracks = [(track.notes.numpy(), track.program, track.is_drum) for track in score.tracks if len(track.notes)]
    tempos, sigs, keys = score.tempos.numpy(), score.time_signatures.numpy(), score.key_signatures.numpy()
    if tpq <= 0 or not tracks or (tempos["mspq"] <= 0).any():  # SMPTE, no notes, a zero tempo
        return None
    starts = np.concatenate([arrays["time"] for arrays, _, _ in tracks]).astype(np.int64)  # (notes,)
    ends = starts + np.concatenate([arrays["duration"] for arrays, _, _ in tracks])  # (notes,)
    times = np.concatenate([starts, ends, tempos["time"], sigs["time"], keys["time"]])  # (events,)
    if times.min() < 0 or times.max() > _MAX_MIDI_TICK:  # a corrupt time (pretty_midi's limit)
        return None
    starts, ends = _midi_to_grid(starts, tpq), _midi_to_grid(ends, tpq)
    notes = np.stack([  # (notes, 6): see _note_table
        np.concatenate([np.full(len(arrays["time"]), program) for arrays, program, _ in tracks]),
        np.concatenate([np.full(len(arrays["time"]), is_drum) for arrays, _, is_drum in tracks]),
        np.concatenate([arrays["pitch"] for arrays, _, _ in tracks]),
        starts,
        np.maximum(ends - starts, 1),  # a note lasts at least 1 tick
        np.concatenate([arrays["velocity"] for arrays, _, _ in tracks]),
    ], axis=1).astype(np.int64)
    tempo_list = [TempoChange(tick, round(60e6 / mspq, 3))
                  for tick, mspq in zip(_midi_to_grid(tempos["time"], tpq).tolist(), tempos["mspq"].tolist())]
    sig_list = [TimeSignature(tick, numerator, denominator) for tick, numerator, denominator in zip(
        _midi_to_grid(sigs["time"], tpq).tolist(), sigs["numerator"].tolist(), sigs["denominator"].tolist())]
    key = None
    if len(keys["time"]):
        first = int(np.argmin(keys["time"]))
        sharps, minor = int(keys["key"][first]), int(keys["tonality"][first])
        if not (-7 <= sharps <= 7 and minor in (0, 1)):
            return None
        tonic = (_MINOR_BY_SHARPS if minor else _MAJOR_BY_SHARPS)[sharps + 7]
        key = _key_name(_pitch_class(tonic), bool(minor), tonic)
    try:
        return _snapped_piece(notes, tempo_list, sig_list, key, name or _track_name(chunks[0]), label)
    except MidiError:  # e.g. a 3/64 time signature: the mido reader words the reason
        return None


def _midi_to_grid(midi_ticks: np.ndarray, resolution: int) -> np.ndarray:
    """MIDI ticks -> grid ticks: ``midi_ticks * 12 / resolution`` rounded, halves up."""
    return (2 * TICKS_PER_QUARTER * midi_ticks.astype(np.int64) + resolution) // (2 * resolution)


def _track_chunks(data: bytes) -> list[bytes] | None:
    """The bodies of the ``MTrk`` chunks the header announces (other chunks are skipped), or None if
    the data ends before them."""
    if len(data) < 14:
        return None
    header_size, n_tracks = int.from_bytes(data[4:8], "big"), int.from_bytes(data[10:12], "big")
    chunks, pos = [], 8 + header_size
    while len(chunks) < n_tracks:
        size = int.from_bytes(data[pos + 4:pos + 8], "big")
        if pos + 8 + size > len(data):
            return None
        if data[pos:pos + 4] == b"MTrk":
            chunks.append(data[pos + 8:pos + 8 + size])
        pos += 8 + size
    return chunks


def _track_name(chunk: bytes) -> str:
    """The text of the first track-name event of one track chunk, else "" (symusic drops tracks
    without notes, and with them the conductor track's name).

        >>> _track_name(bytes([0, 0xFF, 0x03, 2]) + b"hi")
        'hi'
    """
    pos, status = 0, 0
    try:
        while pos < len(chunk):
            pos = _read_varlen(chunk, pos)[1]  # delta time
            byte = chunk[pos]
            if byte == 0xFF:  # meta event: FF type length data
                length, data_pos = _read_varlen(chunk, pos + 2)
                if chunk[pos + 1] == 0x03:
                    return chunk[data_pos:data_pos + length].decode("latin-1")
                pos = data_pos + length
            elif byte in (0xF0, 0xF7):  # sysex: F0 length data
                length, data_pos = _read_varlen(chunk, pos + 1)
                pos, status = data_pos + length, 0
            else:  # channel message, perhaps in running status (no status byte)
                if byte >= 0x80:
                    status, pos = byte, pos + 1
                if not 0x80 <= status < 0xF0:
                    return ""
                pos += 1 if 0xC0 <= status < 0xE0 else 2
    except IndexError:  # the chunk ends inside an event
        pass
    return ""


def _read_varlen(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of a MIDI variable-length number starting at ``pos``."""
    value = 0
    while True:
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos


def _from_midi_mido(data: bytes, label: str, name: str) -> Piece:
    """The fallback reader (mido + pretty_midi, pure Python): used where symusic is not installed,
    and for files symusic rejects, to read them or to name the reason."""
    import mido
    import pretty_midi

    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception as e:  # mido raises EOFError, OSError, ValueError, KeyError, IndexError ...
        raise MidiError(f"{label}: unreadable MIDI data ({_reason(e)})") from e
    if midi.ticks_per_beat <= 0:
        raise MidiError(f"{label}: SMPTE time division is not supported (need ticks per quarter note)")
    if not midi.tracks:
        raise MidiError(f"{label}: the MIDI file has no tracks")
    _move_conductor_events_to_track0(midi)
    track0 = midi.tracks[0]
    key_event = next((e for e in track0 if e.type == "key_signature"), None)
    track_name = next((e.name for e in track0 if e.type == "track_name"), "")
    try:
        pm = pretty_midi.PrettyMIDI(mido_object=midi)
    except Exception as e:  # pretty_midi: ZeroDivisionError for a zero tempo, ValueError for huge ticks ...
        raise MidiError(f"{label}: unreadable MIDI data ({_reason(e)})") from e
    piece = _from_pretty_midi(pm, name or track_name, label)
    if key_event is not None:  # mido keeps the file's spelling ('F#' vs 'Gb'), pretty_midi does not
        tonic, minor = key_event.key.rstrip("m"), key_event.key.endswith("m")
        piece.key = _key_name(_pitch_class(tonic), minor, tonic)
    return piece


def _reason(e: Exception) -> str:
    if isinstance(e, EOFError):
        return "the data ends too early, the file is truncated"
    return f"{type(e).__name__}: {e}"


def _move_conductor_events_to_track0(midi: "mido.MidiFile") -> None:
    """Tempo, time signature and key events of every track go to track 0, the only one pretty_midi reads."""
    if not any(e.type in _CONDUCTOR_EVENTS for track in midi.tracks[1:] for e in track):
        return
    tracks = [list(zip(itertools.accumulate(e.time for e in track), track)) for track in midi.tracks]
    moved = [(t, e) for track in tracks[1:] for t, e in track if e.type in _CONDUCTOR_EVENTS]
    rest = [[(t, e) for t, e in track if e.type not in _CONDUCTOR_EVENTS] for track in tracks[1:]]
    tracks = [tracks[0] + moved] + rest
    midi.tracks = [_midi_track(sorted(track, key=lambda te: te[0])) for track in tracks]


def _midi_track(events: list[tuple[int, "mido.Message"]]) -> "mido.MidiTrack":
    """A track from (absolute tick, message) pairs in time order."""
    import mido

    track, last = mido.MidiTrack(), 0
    for tick, event in events:
        track.append(event.copy(time=tick - last))
        last = tick
    return track


def _from_pretty_midi(pm: "pretty_midi.PrettyMIDI", name: str, label: str) -> Piece:
    rows = [(n.start, n.end, n.pitch, n.velocity, inst.program, inst.is_drum)
            for inst in pm.instruments for n in inst.notes]
    starts = _grid_ticks(pm, np.array([row[0] for row in rows], dtype=float), label)  # (notes,)
    ends = _grid_ticks(pm, np.array([row[1] for row in rows], dtype=float), label)  # (notes,)
    notes = [
        Note(int(start), max(1, int(end - start)), int(pitch), int(velocity), int(program), bool(is_drum))
        for start, end, (_, _, pitch, velocity, program, is_drum) in zip(starts, ends, rows)
    ]
    times, qpms = pm.get_tempo_changes()
    tempos = [TempoChange(int(t), round(float(q), 3)) for t, q in zip(_grid_ticks(pm, times, label), qpms)]
    sig_ticks = _grid_ticks(pm, np.array([ts.time for ts in pm.time_signature_changes], dtype=float), label)
    sigs = [TimeSignature(int(t), ts.numerator, ts.denominator) for t, ts in zip(sig_ticks, pm.time_signature_changes)]
    key = None
    if pm.key_signature_changes:
        number = pm.key_signature_changes[0].key_number
        key = _key_name(number % 12, number >= 12)
    return _snapped_piece(_note_table(notes), tempos, sigs, key, name, label)


def _grid_ticks(pm: "pretty_midi.PrettyMIDI", seconds: np.ndarray, label: str) -> np.ndarray:
    """Seconds -> the object's MIDI ticks (nearest, through its tempo map) -> grid ticks (halves up)."""
    bad = seconds[~(np.isfinite(seconds) & (seconds >= 0))]
    if bad.size:
        raise MidiError(f"{label}: time {bad[0]} s is negative or not a number")
    change_times, qpms = pm.get_tempo_changes()  # (changes,) each
    change_ticks = np.array([pm.time_to_tick(t) for t in change_times])
    i = np.searchsorted(change_times, seconds, side="right") - 1  # tempo in force at each time
    midi_ticks = np.rint(change_ticks[i] + (seconds - change_times[i]) * qpms[i] / 60 * pm.resolution).astype(np.int64)
    return (2 * TICKS_PER_QUARTER * midi_ticks + pm.resolution) // (2 * pm.resolution)


def _snapped_piece(notes: np.ndarray, tempos: list[TempoChange], sigs: list[TimeSignature],
                   key: str | None, name: str, label: str) -> Piece:
    """The piece a converter returns from its note table (N, 6) (see :func:`_note_table`): tidied,
    with 120 bpm and 4/4 where the source gives none."""
    if not len(notes):
        raise MidiError(f"{label}: contains no notes")
    tempos = _tidy_changes([TempoChange(0, 120.0)] + tempos, lambda t: t.bpm)  # a source tempo at 0 wins
    sigs = _tidy_changes([TimeSignature(0, 4, 4)] + sigs, lambda ts: (ts.numerator, ts.denominator))
    return Piece(_table_notes(_tidy_table(notes)), tempos, sigs, key, name).validate(label)


# --------------------------------------------------------------------------- MIDI out
def _to_midi_bytes(piece: Piece) -> bytes:
    import pretty_midi

    label = piece.name or "piece"
    notes = _tidy_table(_note_table(piece.validate(label).notes))  # (N, 6): the notes of normalize()
    piece = piece.replace(notes=[]).normalize()  # its tempos and time signatures
    scale = MIDI_RESOLUTION // TICKS_PER_QUARTER
    try:
        name = piece.name.encode("latin-1")  # the charset of MIDI text events (as mido reads them)
    except UnicodeEncodeError as e:
        raise MidiError(f"{label}: cannot be written as MIDI (the name is not Latin-1 text: {e})") from e
    conductor = [(0, _meta_event(0x03, name))]
    if piece.key is not None:
        sharps, minor = _key_sharps(piece.key)
        conductor.append((0, _meta_event(0x59, bytes([sharps & 0xFF, minor]))))
    for ts in piece.time_signatures:
        if ts.numerator > 255:
            raise MidiError(f"{label}: cannot be written as MIDI (time signature numerator {ts.numerator} > 255)")
        exponent = ts.denominator.bit_length() - 1  # 8 -> 3
        conductor.append((ts.tick * scale, _meta_event(0x58, bytes([ts.numerator, exponent, 24, 8]))))
    for t in piece.tempos:
        tempo = round(60e6 / t.bpm)  # microseconds per quarter note, 3 bytes
        if not 0 < tempo <= 0xFFFFFF:
            raise MidiError(f"{label}: cannot be written as MIDI (tempo {t.bpm} bpm: MIDI holds 3.58 to 1.2e8 bpm)")
        conductor.append((t.tick * scale, _meta_event(0x51, tempo.to_bytes(3, "big"))))
    tracks = [_track_bytes(sorted(conductor, key=lambda te: te[0]))]
    channels = itertools.cycle([c for c in range(16) if c != 9])  # more than 15 programs share channels
    for is_drum, program in sorted(set(zip(notes[:, 1].tolist(), notes[:, 0].tolist()))):
        channel = 9 if is_drum else next(channels)
        title = "Drums" if is_drum else pretty_midi.program_to_instrument_name(program)
        group = notes[(notes[:, 0] == program) & (notes[:, 1] == is_drum)]  # (n, 6)
        n = len(group)
        ticks = np.r_[group[:, 3], group[:, 3] + group[:, 4]] * scale  # (2n,): note-ons, then note-offs
        is_on, pitches = np.r_[np.ones(n, int), np.zeros(n, int)], np.r_[group[:, 2], group[:, 2]]  # (2n,)
        velocities = np.r_[group[:, 5], np.zeros(n, int)]  # (2n,)
        order = np.lexsort((velocities, pitches, is_on, ticks))  # by tick; at one tick note-offs first
        status = np.where(is_on, 0x90 | channel, 0x80 | channel)  # (2n,)
        tracks.append(_track_bytes(
            [(0, _meta_event(0x03, title.encode("latin-1"))), (0, bytes([0xC0 | channel, program]))]
            + [(tick, bytes(event)) for tick, event in zip(
                ticks[order].tolist(), np.stack([status, pitches, velocities], axis=1)[order].tolist())]
        ))
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), MIDI_RESOLUTION)
    return header + b"".join(b"MTrk" + struct.pack(">I", len(track)) + track for track in tracks)


def _meta_event(kind: int, data: bytes) -> bytes:
    return bytes([0xFF, kind]) + _varlen_bytes(len(data)) + data


def _track_bytes(events: list[tuple[int, bytes]]) -> bytes:
    """One ``MTrk`` chunk body from (absolute MIDI tick, event bytes) in time order: delta times,
    running status (a channel status byte equal to the last one is left out) and end of track --
    byte for byte what mido writes for the same messages."""
    out, last, running = bytearray(), 0, None
    for tick, event in events:
        out += _varlen_bytes(tick - last)
        out += event[1:] if event[0] == running else event
        running = event[0] if event[0] < 0xF0 else None
        last = tick
    out += b"\x00\xff\x2f\x00"  # end of track
    return bytes(out)


@functools.lru_cache(maxsize=4096)  # the same delta times recur all through a piece
def _varlen_bytes(value: int) -> bytes:
    """A MIDI variable-length number: 7 bits a byte, most significant first, high bit = more follow."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


# --------------------------------------------------------------------------- music21
def _from_music21(s: "music21.stream.Stream", name: str | None) -> Piece:
    from music21 import exceptions21, instrument, key, meter, note, repeat, stream, tempo

    if not isinstance(s, stream.Stream):
        raise TypeError(f"from_music21: expected a music21 stream, got {type(s).__name__}")
    title = _music21_title(s)
    label = name or title or f"<music21 {type(s).__name__}>"
    try:
        if s.recurse().getElementsByClass(repeat.RepeatMark).first() is not None:
            try:
                s = s.expandRepeats()  # as music21's own MIDI export does
            except repeat.ExpanderException as e:
                warnings.warn(f"{label}: repeats are read as written, not expanded ({e})", stacklevel=3)
        s = s.stripTies()  # a copy in which tied notes are one note
        parts = list(s.parts) if s.hasPartLikeStreams() else [s]
        first_bar = parts[0].recurse().getElementsByClass(stream.Measure).first()
        pickup = Fraction(first_bar.paddingLeft) if first_bar is not None else Fraction(0)

        def grid(offset) -> int:
            return _round_half_up((Fraction(offset) + pickup) * TICKS_PER_QUARTER)

        notes, tempos, sigs, found_key = [], [], [], None
        for part in parts:
            program, part_is_drum = 0, False
            for el in part.flatten():
                # conductor marks at offset 0 stay at tick 0, before a padded pickup
                tick = 0 if el.offset == 0 else grid(el.offset)
                if isinstance(el, instrument.Instrument):
                    program = el.midiProgram or 0
                    part_is_drum = el.midiChannel == 9 or isinstance(el, instrument.UnpitchedPercussion)
                elif isinstance(el, tempo.MetronomeMark) and el.getQuarterBPM():
                    tempos.append(TempoChange(tick, round(float(el.getQuarterBPM()), 3)))
                elif isinstance(el, meter.TimeSignature):
                    sigs.append(TimeSignature(tick, el.numerator, el.denominator))
                elif isinstance(el, key.KeySignature) and found_key is None:
                    found_key = el
                elif isinstance(el, note.NotRest) and not el.duration.isGrace:
                    start = grid(el.offset)
                    duration = max(1, grid(el.offset + el.quarterLength) - start)
                    for pitch, velocity, is_drum in _music21_sounds(el, part_is_drum):
                        notes.append(Note(start, duration, pitch, velocity, program, is_drum))
    except exceptions21.Music21Exception as e:
        raise MidiError(f"{label}: music21 could not read the stream ({type(e).__name__}: {e})") from e
    key_name = _music21_key_name(found_key)
    return _snapped_piece(_note_table(notes), tempos, sigs, key_name, name if name is not None else title, label)


def _music21_sounds(el, part_is_drum: bool) -> list[tuple[int, int, bool]]:
    """(MIDI pitch, velocity, is_drum) of each sounding note of a music21 note, chord or unpitched note."""
    from music21 import chord, note

    parts = el.notes if isinstance(el, chord.ChordBase) else [el]
    outer = el.volume.velocity if isinstance(el, chord.ChordBase) else None
    sounds = []
    for n in parts:
        velocity = n.volume.velocity or outer or 80
        if isinstance(n, note.Unpitched):
            stored = n.storedInstrument
            pitch = getattr(stored, "percMapPitch", None) or n.displayPitch().midi
            sounds.append((int(pitch), int(velocity), True))
        else:
            sounds.append((int(n.pitch.midi), int(velocity), part_is_drum))
    return sounds


def _music21_title(s) -> str:
    """The title of the stream (or of the score holding it), else its movement or corpus file name."""
    meta = s.metadata or s.getContextByClass("Metadata")
    if meta is None:
        return ""
    for text in (meta.title, meta.movementName, meta.corpusFilePath and Path(str(meta.corpusFilePath)).name):
        if text:
            return re.sub(r"\.(mxl|musicxml|xml|krn|abc|mid|midi)$", "", str(text))
    return ""


def _music21_key_name(k) -> str | None:
    if k is None:
        return None
    from music21 import key

    if not (isinstance(k, key.Key) and k.mode in ("major", "minor")):
        k = key.KeySignature(k.sharps).asKey("major")  # a bare signature or a church mode
    return _key_name(k.tonic.pitchClass, k.mode == "minor", k.tonic.name.replace("-", "b"))


def _to_music21(piece: Piece) -> "music21.stream.Score":
    from music21 import chord, instrument, key, metadata, meter, note, stream, tempo

    piece = piece.validate(piece.name or "piece").normalize()
    score = stream.Score()
    if piece.name:
        score.insert(0, metadata.Metadata(title=piece.name))
    groups = sorted({(n.is_drum, n.program) for n in piece.notes}) or [(False, 0)]
    channels = itertools.cycle([c for c in range(16) if c != 9])  # as in to_midi_bytes
    for index, (is_drum, program) in enumerate(groups):
        part = stream.Part()
        inst = instrument.UnpitchedPercussion() if is_drum else instrument.instrumentFromMidiProgram(program)
        inst.midiProgram, inst.midiChannel = program, 9 if is_drum else next(channels)
        part.insert(0, inst)
        if piece.key is not None:
            tonic, minor = _parse_key(piece.key)
            part.insert(0, key.Key(tonic.replace("b", "-"), "minor" if minor else "major"))
        for ts in piece.time_signatures:
            part.insert(Fraction(ts.tick, TICKS_PER_QUARTER), meter.TimeSignature(f"{ts.numerator}/{ts.denominator}"))
        if index == 0:
            for t in piece.tempos:
                part.insert(Fraction(t.tick, TICKS_PER_QUARTER), tempo.MetronomeMark(number=t.bpm, referent=1.0))
        mine = [n for n in piece.notes if (n.is_drum, n.program) == (is_drum, program)]
        for (start, duration), same in itertools.groupby(mine, key=lambda n: (n.start, n.duration)):
            sounding = []
            for n in same:
                m21_note = note.Note(n.pitch)
                m21_note.volume.velocity = n.velocity
                sounding.append(m21_note)
            el = sounding[0] if len(sounding) == 1 else chord.Chord(sounding)
            el.quarterLength = Fraction(duration, TICKS_PER_QUARTER)
            part.insert(Fraction(start, TICKS_PER_QUARTER), el)
        score.insert(0, part)
    return score
