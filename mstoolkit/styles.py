"""Style renderers: ``Piece -> Piece`` functions that play the same music in another idiom.

Each style is a :class:`Style` in the registry :data:`STYLES` (name, description, default
parameters, a General-MIDI program for the melody and one for the accompaniment, the function).
StyleBench renders every content window in every style, so each style transfer has a ground truth.

    >>> [n.start for n in render_style(Piece([Note(0, 6, 72), Note(6, 6, 74)]), "swing").notes]
    [0, 8]

Shared definitions (every renderer follows them):

* **Melody** = the skyline: at each onset, the highest note sounding there, if it starts there
  (a note that starts under a still-sounding higher note is not melody); each melody note is cut
  at the next melody onset, so the melody is monophonic. See :func:`melody`.
* **Harmony** = one chord per beat, estimated from the content's pitch classes by template
  matching (major, minor, diminished, dominant-seventh; duration-weighted, with a bonus when the
  lowest sounding note is the root); a beat where nothing sounds keeps the previous chord. See
  :func:`estimate_chords`. A beat is a quarter note in x/4, a half note in x/2, a dotted quarter
  in 6/8, 9/8 and 12/8, an eighth in other x/8 meters (:func:`beat_ticks`).
* **Articulation styles** (straight, swing, staccato) keep every note and change only timing,
  duration and velocity. **Accompaniment styles** (shuffle, waltz, alberti, arpeggio, stride,
  bossa) keep the melody and replace all lower voices by a pattern built from the harmony.
* Accompaniment notes always lie strictly below the melody note sounding at their onset (moved
  down by octaves, dropped under MIDI 28), are cut where the melody moves to or below them, and
  are silent where the melody rests. So the melody of the result equals the melody of the content.
  Two exceptions: staccato's shorter notes may let a lower onset surface as the top note (every
  melody note of the content stays the highest note starting at its onset), and swing/shuffle
  leave a quarter straight when its notes are faster than the 12-per-quarter grid can swing.
* Bar structure (time signatures, number of bars) is kept; the tempo map is kept. Swing always
  pairs eighths inside quarter notes counted from the bar line, also in compound meters.
* Velocities are humanized by ``+-humanize`` drawn from ``np.random.default_rng(seed)``, so a
  renderer is deterministic given its seed.
* Melody notes get the style's ``program``, all other notes its ``accompaniment_program``.
  Drum notes pass through unchanged.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from mstoolkit.config import UserError
from mstoolkit.piece import Note, Piece, TICKS_PER_QUARTER, TimeSignature

Q = TICKS_PER_QUARTER  # 12 ticks per quarter note
LOWEST_ACCOMPANIMENT_PITCH = 28  # E1: accompaniment notes pushed below this are dropped

# --------------------------------------------------------------------------- melody and meter


def melody(piece: Piece) -> list[Note]:
    """The skyline melody: the highest sounding note at each onset, cut at the next melody onset.

    A note is melody if it is the highest note starting at its onset and no note that started
    earlier and still sounds there is as high or higher (a unison entry under a held note is not).

    >>> [n.pitch for n in melody(Piece([Note(0, 24, 72), Note(0, 12, 60), Note(12, 12, 62)]))]
    [72]
    """
    notes = [n for n in piece.notes if not n.is_drum]
    result: list[Note] = []
    by_start: dict[int, Note] = {}
    for n in notes:  # highest note starting at each onset (ties: the longest)
        best = by_start.get(n.start)
        if best is None or (n.pitch, n.duration) > (best.pitch, best.duration):
            by_start[n.start] = n
    active: list[Note] = []  # notes that started before the current onset, by start
    i = 0
    for t in sorted(by_start):
        while i < len(notes) and notes[i].start < t:
            active.append(notes[i])
            i += 1
        active = [n for n in active if n.end > t]
        top = by_start[t]
        if all(n.pitch < top.pitch for n in active):
            result.append(top)
    return [
        dataclasses.replace(n, duration=min(n.duration, nxt.start - n.start))
        for n, nxt in zip(result, result[1:])
    ] + result[-1:]


def beat_ticks(ts: TimeSignature) -> int:
    """Ticks per beat: a quarter in x/4, a half in x/2, a dotted quarter in compound x/8."""
    if ts.denominator == 8 and ts.numerator % 3 == 0 and ts.numerator > 3:
        return 3 * Q // 2
    return 4 * Q // ts.denominator


def n_bars(piece: Piece) -> int:
    """Number of bars up to the last note's end (at least 1)."""
    return len(piece.bar_starts())


def _bars(piece: Piece) -> list[tuple[int, TimeSignature]]:
    """(start tick, time signature) of every bar up to the end of the last note."""
    return [(s, piece.time_signature_at(s)) for s in piece.bar_starts()]


# --------------------------------------------------------------------------- harmony

_QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "dom7": (0, 4, 7, 10),
    # voicing-only qualities (never estimated), see Chord.with_color
    "6": (0, 4, 7, 9),
    "min7": (0, 3, 7, 10),
    "m7b5": (0, 3, 6, 10),
}
_ESTIMATED = ("maj", "min", "dom7", "dim")  # tie order: simpler chords first
_PC_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


@dataclass(frozen=True)
class Chord:
    """A chord as a root pitch class (0 = C) and a quality (``"maj"``, ``"min"``, ...).

    >>> Chord(7, "dom7").intervals
    (0, 4, 7, 10)
    """

    root: int
    quality: str

    @property
    def intervals(self) -> tuple[int, ...]:
        return _QUALITIES[self.quality]

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        return tuple((self.root + i) % 12 for i in self.intervals)

    def with_color(self) -> "Chord":
        """The bossa-nova colour: maj -> 6, min -> min7, dim -> m7b5; dom7 unchanged.

        Added sixths and minor sevenths stay inside the key for I, IV, V and ii, iii, vi of a
        major key, so no key estimate is needed.
        """
        return Chord(self.root, {"maj": "6", "min": "min7", "dim": "m7b5"}.get(self.quality, self.quality))

    def bass(self, low: int, degree: int = 0) -> int:
        """Pitch of chord tone ``degree`` (0 root, 1 third, 2 fifth) in ``[low, low + 12)``."""
        pc = (self.root + self.intervals[degree]) % 12
        return low + (pc - low) % 12

    def voicing(self, low: int, n: int) -> list[int]:
        """``n`` ascending chord tones in root position: root at or above ``low``, then 3rd, 5th, ...

        >>> Chord(0, "maj").voicing(48, 4)
        [48, 52, 55, 60]
        """
        root = self.bass(low)
        k = len(self.intervals)
        return [root + 12 * (i // k) + self.intervals[i % k] for i in range(n)]

    def __str__(self) -> str:
        return _PC_NAMES[self.root] + {"maj": "", "min": "m", "dim": "dim", "dom7": "7"}.get(self.quality, self.quality)


def _templates() -> tuple[np.ndarray, list[Chord]]:
    chords = [Chord(r, q) for q in _ESTIMATED for r in range(12)]
    masks = np.zeros((len(chords), 12))  # (n_chords, 12) chord-tone masks
    for i, c in enumerate(chords):
        masks[i, list(c.pitch_classes)] = 1.0
    return masks, chords


_TEMPLATE_MASKS, _TEMPLATE_CHORDS = _templates()
_TEMPLATE_ROOTS = np.array([c.root for c in _TEMPLATE_CHORDS])


def beat_grid(piece: Piece) -> list[tuple[int, int]]:
    """(start, end) of every beat of every bar up to the end of the last note."""
    beats = []
    for start, ts in _bars(piece):
        step, end = beat_ticks(ts), start + ts.bar_ticks
        beats += [(t, min(t + step, end)) for t in range(start, end, step)]
    return beats


def estimate_chords(piece: Piece) -> list[tuple[int, int, Chord]]:
    """One chord per beat, ``[(start, end, Chord), ...]``, by pitch-class template matching.

    Score of a template = duration-weighted chord-tone weight - 0.6 x non-chord-tone weight,
    + half a beat of weight if the lowest note sounding at the beat start is the root.

    >>> [str(c) for _, _, c in estimate_chords(Piece([Note(0, 24, 48), Note(0, 24, 52), Note(24, 24, 53)]))]
    ['C', 'C', 'F', 'F']
    """
    notes = [n for n in piece.notes if not n.is_drum]
    grid = beat_grid(piece)
    starts = np.array([n.start for n in notes], dtype=np.int64)
    ends = np.array([n.end for n in notes], dtype=np.int64)
    pitches = np.array([n.pitch for n in notes], dtype=np.int64)
    found: list[Chord | None] = []
    for start, end in grid:
        overlap = np.minimum(ends, end) - np.maximum(starts, start)  # (n_notes,) ticks inside the beat
        sounding = overlap > 0
        if not sounding.any():
            found.append(None)
            continue
        weights = np.bincount(pitches[sounding] % 12, weights=overlap[sounding], minlength=12)  # (12,)
        at_start = sounding & (starts <= start)
        bass_pc = int(pitches[at_start if at_start.any() else sounding].min()) % 12
        scores = _TEMPLATE_MASKS @ weights - 0.6 * ((1 - _TEMPLATE_MASKS) @ weights)  # (n_chords,)
        scores += 0.5 * (end - start) * (_TEMPLATE_ROOTS == bass_pc)
        found.append(_TEMPLATE_CHORDS[int(np.argmax(scores))])  # argmax: first of equal scores
    known = [c for c in found if c is not None]
    if not known:
        return []
    result, previous = [], known[0]  # silent beats keep the previous chord (leading ones: the first)
    for (start, end), chord in zip(grid, found):
        previous = chord or previous
        result.append((start, end, previous))
    return result


class _ChordLookup:
    """``lookup(tick) -> Chord`` over the per-beat chords of a piece."""

    def __init__(self, chords: list[tuple[int, int, Chord]]):
        self.starts = np.array([s for s, _, _ in chords], dtype=np.int64)
        self.chords = [c for _, _, c in chords]

    def __call__(self, tick: int) -> Chord:
        i = int(np.searchsorted(self.starts, tick, side="right")) - 1
        return self.chords[max(i, 0)]


# --------------------------------------------------------------------------- shared helpers


def _humanize(velocity: float, rng: np.random.Generator, amount: int) -> int:
    jitter = int(rng.integers(-amount, amount + 1)) if amount > 0 else 0
    return min(max(int(round(velocity)) + jitter, 1), 127)


def _is_strong(tick: int, bar_start: int, ts: TimeSignature) -> bool:
    """Bar downbeat, or the middle beat of a bar with an even number of beats (beat 3 of 4/4)."""
    pos, beat = tick - bar_start, beat_ticks(ts)
    n_beats = max(ts.bar_ticks // beat, 1)
    return pos == 0 or (n_beats % 2 == 0 and n_beats >= 4 and pos == (n_beats // 2) * beat)


def _bar_of(piece: Piece) -> Callable[[int], tuple[int, TimeSignature]]:
    bars = _bars(piece)
    starts = np.array([s for s, _ in bars], dtype=np.int64)

    def lookup(tick: int) -> tuple[int, TimeSignature]:
        return bars[max(int(np.searchsorted(starts, tick, side="right")) - 1, 0)]

    return lookup


def _swing_warp(piece: Piece, ratio: float, notes: list[Note]) -> Callable[[int], int]:
    """Tick map that turns each quarter's eighth pair (0, 6) into (0, 12 * ratio / (1 + ratio)).

    Piecewise linear inside every quarter note counted from the bar line, so sixteenths follow
    (ratio 2: 0, 3, 6, 9 -> 0, 4, 8, 10); beat and bar lines stay where they are. A quarter in
    which two different start/end times of ``notes`` would land on the same tick (notes faster
    than the 12-per-quarter grid can swing, e.g. 32nd-note ornaments) stays straight.
    """
    long = Q * ratio / (1.0 + ratio)
    bar_of = _bar_of(piece)

    def locate(tick: int) -> tuple[int, int, bool]:
        """(start of the quarter, position in it, whether the bar holds the whole quarter)."""
        bar_start, ts = bar_of(tick)
        quarter, r = divmod(tick - bar_start, Q)
        return bar_start + quarter * Q, r, (quarter + 1) * Q <= ts.bar_ticks

    def shift(r: int) -> int:
        r2 = r * long / (Q / 2) if r <= Q / 2 else long + (r - Q / 2) * (Q - long) / (Q / 2)
        return min(int(r2 + 0.5), Q - 1) if r else 0

    positions: dict[int, set[int]] = {}
    for t in {n.start for n in notes} | {n.end for n in notes}:
        q0, r, whole = locate(t)
        if whole and r:
            positions.setdefault(q0, set()).add(r)
    straight = {q0 for q0, rs in positions.items() if len({shift(r) for r in rs}) < len(rs)}

    def warp(tick: int) -> int:
        q0, r, whole = locate(tick)
        return q0 + shift(r) if whole and q0 not in straight else tick

    return warp


def _warp_notes(notes: list[Note], warp: Callable[[int], int]) -> list[Note]:
    out = []
    for n in notes:
        start = warp(n.start)
        out.append(dataclasses.replace(n, start=start, duration=max(1, warp(n.end) - start)))
    return out


def _assign(piece: Piece, notes: list[Note], melody_keys: set[tuple[int, int]], style: "Style",
            rng: np.random.Generator, velocity: Callable[[Note, bool], float], humanize: int) -> Piece:
    """Set programs (melody vs the rest) and humanized velocities; return the new piece."""
    out = []
    for n in notes:
        if n.is_drum:
            out.append(n)
            continue
        is_mel = (n.start, n.pitch) in melody_keys
        program = style.program if is_mel else style.accompaniment_program
        out.append(dataclasses.replace(n, program=program, velocity=_humanize(velocity(n, is_mel), rng, humanize)))
    return piece.replace(notes=out)


# --------------------------------------------------------------------------- articulation styles


def _quantize_map(starts: set[int], ends: set[int], grid: int) -> dict[int, int]:
    """Snap note starts and ends to the nearest multiple of ``grid``, except at a grid point where
    two different starts would meet, or an end would meet an earlier start (an overlap would be
    lost): times headed there keep their tick. So no onset merges and every note still sounds
    at each onset it sounded at before: the melody survives."""
    snap = lambda t: (t + grid // 2) // grid * grid  # noqa: E731
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for t in starts:
        groups.setdefault(snap(t), ([], []))[0].append(t)
    for t in ends:
        groups.setdefault(snap(t), ([], []))[1].append(t)
    result: dict[int, int] = {}
    for g, (s, e) in groups.items():
        contested = len(s) > 1 or (s and any(t > s[0] for t in e))
        result.update({t: t if contested else g for t in s + e})
    return result


def _render_straight(piece: Piece, style: "Style", rng: np.random.Generator, *, grid: int, velocity: int,
                     legato_max_gap: int, humanize: int) -> Piece:
    """Straight: note starts and ends quantized to ``grid`` ticks (3 = sixteenths, 6 = eighths;
    onsets that would merge, e.g. 32nd-note ornaments, keep their tick), then legato:
    a note that ends before the next onset of the piece is held until that onset (gaps up to
    ``legato_max_gap`` ticks). Flat, even velocity. All voices kept."""
    if grid < 1:
        raise ValueError(f"straight: grid must be >= 1 tick, got {grid}")
    snap = _quantize_map({n.start for n in piece.notes}, {n.end for n in piece.notes}, grid)
    notes = [dataclasses.replace(n, start=snap[n.start], duration=snap[n.end] - snap[n.start]) for n in piece.notes]
    onsets = sorted({n.start for n in notes})
    legato = []
    for n in notes:
        i = int(np.searchsorted(onsets, n.start, side="right"))
        if i < len(onsets) and n.end < onsets[i] <= n.end + legato_max_gap:
            n = dataclasses.replace(n, duration=onsets[i] - n.start)
        legato.append(n)
    keys = {(n.start, n.pitch) for n in melody(piece.replace(notes=legato))}
    return _assign(piece, legato, keys, style, rng, lambda n, m: velocity + (4 if m else 0), humanize)


def _render_swing(piece: Piece, style: "Style", rng: np.random.Generator, *, ratio: float, velocity: int,
                  offbeat_accent: int, humanize: int) -> Piece:
    """Swing: every quarter's eighth pair becomes long-short with ``ratio``:1 (2.0 = triplet
    swing: onsets 0, 6 -> 0, 8; durations 6, 6 -> 8, 4). Sixteenths follow the same piecewise-linear
    map. Swung off-beats are accented by ``offbeat_accent``. All voices kept."""
    if not ratio > 0:
        raise ValueError(f"swing: ratio must be > 0, got {ratio}")
    warped = _warp_notes(piece.notes, _swing_warp(piece, ratio, piece.notes))
    keys = {(n.start, n.pitch) for n in melody(piece.replace(notes=warped))}
    bar_of = _bar_of(piece)

    def vel(n: Note, is_mel: bool) -> float:
        off = (n.start - bar_of(n.start)[0]) % Q != 0
        return velocity + (offbeat_accent if off else 0) + (6 if is_mel else 0)

    return _assign(piece, warped, keys, style, rng, vel, humanize)


def _render_staccato(piece: Piece, style: "Style", rng: np.random.Generator, *, factor: float, velocity: int,
                     accent: int, humanize: int) -> Piece:
    """Staccato/marcato: every duration times ``factor`` (0.5 halves it, rounding half up, at least
    one tick), except a final note tied over into the last bar, which is held so that the bar
    count stays; notes on strong beats (bar downbeat, middle beat of 4/4) are accented by ``accent``,
    notes off the beat are played 8 softer. All voices and onsets kept.

    Because notes get shorter, a lower note starting under a shortened melody note may become the
    highest sounding note at its onset; every melody note of the content stays the highest note
    starting at its onset."""
    if not 0 < factor <= 1:
        raise ValueError(f"staccato: factor must be in (0, 1], got {factor}")
    end, last_bar = piece.end_tick, piece.bar_starts()[-1]
    notes = [n if n.end == end and n.start < last_bar else
             dataclasses.replace(n, duration=max(1, int(n.duration * factor + 0.5))) for n in piece.notes]
    keys = {(n.start, n.pitch) for n in melody(piece)}
    bar_of = _bar_of(piece)

    def vel(n: Note, is_mel: bool) -> float:
        bar_start, ts = bar_of(n.start)
        if _is_strong(n.start, bar_start, ts):
            return velocity + accent
        return velocity - (8 if (n.start - bar_start) % beat_ticks(ts) else 0)

    return _assign(piece, notes, keys, style, rng, vel, humanize)


# --------------------------------------------------------------------------- accompaniment styles

# A pattern turns one bar into accompaniment events (start, duration, pitch, role), role "bass" or "chord".
Event = tuple[int, int, int, str]
Pattern = Callable[[int, TimeSignature, int, _ChordLookup, dict], list[Event]]


def _accompany(piece: Piece, style: "Style", rng: np.random.Generator, pattern: Pattern, params: dict,
               swing_ratio: float | None = None) -> Piece:
    """Keep the melody, replace lower voices by ``pattern`` over the per-beat harmony."""
    mel = melody(piece)
    if swing_ratio is not None:
        mel = melody(piece.replace(notes=_warp_notes(mel, _swing_warp(piece, swing_ratio, mel))))
    if not mel:
        return piece.replace(notes=[n for n in piece.notes if n.is_drum])
    chords = _ChordLookup(estimate_chords(piece))
    mel_starts = np.array([n.start for n in mel], dtype=np.int64)
    end_tick = max(piece.end_tick, mel[-1].end)
    events: list[Event] = []
    for bar_index, (bar_start, ts) in enumerate(_bars(piece)):
        events += pattern(bar_start, ts, bar_index, chords, params)
    bar_of = _bar_of(piece)
    mel_vel, acc_vel, humanize = params["melody_velocity"], params["accompaniment_velocity"], params["humanize"]
    out = []
    for n in mel:
        bar_start, ts = bar_of(n.start)
        v = mel_vel + (6 if _is_strong(n.start, bar_start, ts) else 0)
        out.append(dataclasses.replace(n, program=style.program, velocity=_humanize(v, rng, humanize)))
    for start, duration, pitch, role in events:
        i = int(np.searchsorted(mel_starts, start, side="right")) - 1
        if i < 0 or mel[i].end <= start:  # the melody rests here: so does the accompaniment
            continue
        while pitch >= mel[i].pitch:
            pitch -= 12
        if pitch < LOWEST_ACCOMPANIMENT_PITCH:
            continue
        end = min(start + duration, end_tick)
        for m in mel[i + 1 :]:  # cut where the melody moves to or below this note
            if m.start >= end:
                break
            if m.pitch <= pitch:
                end = m.start
                break
        if end > start:
            v = acc_vel + (8 if role == "bass" else 0)
            out.append(Note(start, end - start, pitch, _humanize(v, rng, humanize), style.accompaniment_program))
    out += [n for n in piece.notes if n.is_drum]
    return piece.replace(notes=out)


def _beats_in_bar(bar_start: int, ts: TimeSignature) -> list[int]:
    step = beat_ticks(ts)
    return list(range(bar_start, bar_start + ts.bar_ticks, step))


def _waltz_pattern(bar_start: int, ts: TimeSignature, bar_index: int, chord_at: _ChordLookup,
                    p: dict) -> list[Event]:
    """Waltz (oom-pah-pah): bass on beat 1 (the root; the fifth on odd bars with ``alternate_bass``)
    for a beat, a detached root-position triad (2/3 of a beat) on every other beat, each from its
    own beat's chord. 3/4 gives the classic bass-chord-chord; 4/4 content keeps its bars and plays
    bass-chord-chord-chord (oom-pah-pah-pah) rather than being re-barred."""
    beats = _beats_in_bar(bar_start, ts)
    step = beat_ticks(ts)
    c = chord_at(bar_start)
    degree = 2 if p["alternate_bass"] and bar_index % 2 == 1 else 0
    events: list[Event] = [(bar_start, step, c.bass(p["bass_low"], degree), "bass")]
    for b in beats[1:]:
        events += [(b, step * 2 // 3, x, "chord") for x in chord_at(b).voicing(p["chord_low"], 3)]
    return events


def _alberti_pattern(bar_start: int, ts: TimeSignature, bar_index: int, chord_at: _ChordLookup,
                      p: dict) -> list[Event]:
    """Alberti bass: root-position triad broken low-high-middle-high in ``note_ticks`` steps
    (3 = sixteenths, a full pattern per beat), each note from the chord at its own onset."""
    step = p["note_ticks"]
    events: list[Event] = []
    for k, t in enumerate(range(bar_start, bar_start + ts.bar_ticks, step)):
        low, mid, high = chord_at(t).voicing(p["low"], 3)
        events.append((t, step, (low, high, mid, high)[k % 4], "bass" if k % 4 == 0 else "chord"))
    return events


# (chord tone, octave) of each step: 1 5 8 10 12 10 8 5
_ARPEGGIO_SHAPE = ((0, 0), (2, 0), (0, 1), (1, 1), (2, 1), (1, 1), (0, 1), (2, 0))


def _arpeggio_pattern(bar_start: int, ts: TimeSignature, bar_index: int, chord_at: _ChordLookup,
                       p: dict) -> list[Event]:
    """Broken-chord arpeggio: ``note_ticks`` steps through 1 5 8 10 12 10 8 5 of the chord at each
    step (root in ``[low, low + 12)``), each note ringing for ``ring`` steps like a harp."""
    step = p["note_ticks"]
    events: list[Event] = []
    for k, t in enumerate(range(bar_start, bar_start + ts.bar_ticks, step)):
        degree, octave = _ARPEGGIO_SHAPE[k % len(_ARPEGGIO_SHAPE)]
        c = chord_at(t)
        pitch = c.bass(p["low"]) + c.intervals[degree] + 12 * octave
        events.append((t, step * p["ring"], pitch, "bass" if k == 0 else "chord"))
    return events


def _stride_pattern(bar_start: int, ts: TimeSignature, bar_index: int, chord_at: _ChordLookup,
                     p: dict) -> list[Event]:
    """Stride/ragtime left hand: a bass octave on odd beats (beat 1 the root, beat 3 the fifth with
    ``bass_fifth``), a short mid-register triad on even beats."""
    step = beat_ticks(ts)
    events: list[Event] = []
    for k, b in enumerate(_beats_in_bar(bar_start, ts)):
        c = chord_at(b)
        if k % 2 == 0:  # bass: root on beat 1, fifth on beat 3, as an octave
            bass = c.bass(p["bass_low"], 2 if (k // 2) % 2 == 1 and p["bass_fifth"] else 0)
            events += [(b, step * 2 // 3, bass, "bass")]
            if bass - 12 >= LOWEST_ACCOMPANIMENT_PITCH:
                events += [(b, step * 2 // 3, bass - 12, "bass")]
        else:  # off-beat chord, short
            events += [(b, step // 2, x, "chord") for x in c.voicing(p["chord_low"], 3)]
    return events


def _bossa_pattern(bar_start: int, ts: TimeSignature, bar_index: int, chord_at: _ChordLookup,
                    p: dict) -> list[Event]:
    """Bossa-nova comping: dotted-quarter root on beat 1 and fifth on the middle beat; short
    coloured chords (no root) on the clave eighths 0 3 6 of even bars and 2 5 of odd bars."""
    eighth = Q // 2
    n_eighths = ts.bar_ticks // eighth
    beats = _beats_in_bar(bar_start, ts)
    events: list[Event] = []
    bass_beats = [beats[0]] + ([beats[len(beats) // 2]] if len(beats) >= 4 else [])
    for k, b in enumerate(bass_beats):  # root on 1, fifth on 3, dotted quarters
        events.append((b, 3 * eighth, chord_at(b).bass(p["bass_low"], 2 * k), "bass"))
    first = 0 if bar_index % 2 == 0 else 2  # clave: eighths 0 3 6 | 2 5 (3-3-2 then the answer)
    for e in range(first, n_eighths, 3):
        t = bar_start + e * eighth
        c = chord_at(t).with_color() if p["color"] else chord_at(t)
        events += [(t, eighth - 1, x, "chord") for x in c.voicing(p["chord_low"], 4)[1:]]
    return events


def _shuffle_pattern(bar_start: int, ts: TimeSignature, bar_index: int, chord_at: _ChordLookup,
                      p: dict) -> list[Event]:
    """Boogie shuffle left hand: on every quarter a swung eighth pair (``ratio``:1) of the root
    with its fifth (odd quarters) or its sixth (even quarters): 1-5, 1-6, 1-5, 1-6."""
    long = int(round(Q * p["ratio"] / (1.0 + p["ratio"])))
    events: list[Event] = []
    for k, t in enumerate(range(bar_start, bar_start + ts.bar_ticks - Q + 1, Q)):
        c = chord_at(t)
        root = c.bass(p["bass_low"])
        upper = root + (9 if k % 2 == 1 else 7)  # boogie left hand: 1-5, 1-5, 1-6, 1-6
        for start, dur in ((t, long), (t + long, Q - long)):
            events += [(start, dur, root, "bass"), (start, dur, upper, "chord")]
    return events


def _pattern_renderer(pattern: Pattern, swing: bool = False) -> Callable[..., Piece]:
    def render(piece: Piece, style: "Style", rng: np.random.Generator, **params: Any) -> Piece:
        return _accompany(piece, style, rng, pattern, params, swing_ratio=params["ratio"] if swing else None)

    return render


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Style:
    """A registered style: ``style.render(piece, seed=0, **params) -> Piece``.

    ``program`` is the General-MIDI program (0-127) of the melody, ``accompaniment_program`` that
    of every other note; ``swing`` says whether the style swings its eighths (for the swing-ratio
    error); ``kind`` is ``"articulation"`` or ``"accompaniment"``.
    """

    name: str
    description: str
    function: Callable[..., Piece]
    params: Mapping[str, Any] = field(default_factory=dict)
    program: int = 0
    accompaniment_program: int = 0
    kind: str = "accompaniment"
    swing: bool = False

    def render(self, piece: Piece, seed: int = 0, **params: Any) -> Piece:
        """Render ``piece`` in this style; ``params`` override the defaults (unknown names raise)."""
        if not isinstance(piece, Piece):
            raise ValueError(f"style {self.name!r}: expected a Piece, got {type(piece).__name__}")
        unknown = set(params) - set(self.params)
        if unknown:
            raise ValueError(f"style {self.name!r}: unknown parameter(s) {sorted(unknown)}; "
                             f"known: {sorted(self.params)}")
        merged = {**self.params, **params}
        return self.function(piece, self, np.random.default_rng(seed), **merged).validate(f"{self.name} rendering")


_HUMANIZE = 4
_ACCOMPANIMENT_DEFAULTS = {"melody_velocity": 84, "accompaniment_velocity": 58, "humanize": _HUMANIZE}

STYLES: dict[str, Style] = {
    s.name: s
    for s in [
        Style("straight",
              "Legato, quantized to sixteenths, even velocity; all voices kept (string ensemble).",
              _render_straight, {"grid": 3, "velocity": 70, "legato_max_gap": Q, "humanize": _HUMANIZE},
              program=48, accompaniment_program=48, kind="articulation"),
        Style("swing",
              "Eighth pairs long-short (ratio 2:1 = triplet swing, 0,6 -> 0,8), off-beats accented; "
              "all voices kept (alto sax melody over electric piano).",
              _render_swing, {"ratio": 2.0, "velocity": 72, "offbeat_accent": 10, "humanize": _HUMANIZE},
              program=65, accompaniment_program=4, kind="articulation", swing=True),
        Style("shuffle",
              "Heavier swing (3:1, dotted-eighth + sixteenth) on the melody; lower voices replaced by a "
              "boogie left hand: root+fifth / root+sixth dyads on every swung eighth (drawbar organ).",
              _pattern_renderer(_shuffle_pattern, swing=True),
              {"ratio": 3.0, "bass_low": 36, **_ACCOMPANIMENT_DEFAULTS},
              program=16, accompaniment_program=16, swing=True),
        Style("staccato",
              "Staccato/marcato: durations halved, strong beats accented, off-beats softer; all voices "
              "kept (pizzicato strings).",
              _render_staccato, {"factor": 0.5, "velocity": 70, "accent": 24, "humanize": _HUMANIZE},
              program=45, accompaniment_program=45, kind="articulation"),
        Style("waltz",
              "Oom-pah-pah: bass on beat 1 (root, fifth on every other bar), a short chord on each other "
              "beat (3/4: beats 2-3; 4/4: beats 2-4) from each beat's harmony; melody kept (accordion).",
              _pattern_renderer(_waltz_pattern),
              {"bass_low": 36, "chord_low": 53, "alternate_bass": True, **_ACCOMPANIMENT_DEFAULTS},
              program=21, accompaniment_program=21),
        Style("alberti",
              "Alberti bass: broken chord low-high-middle-high in sixteenths under the melody, the chord "
              "taken at each note's beat (acoustic grand piano).",
              _pattern_renderer(_alberti_pattern), {"note_ticks": 3, "low": 48, **_ACCOMPANIMENT_DEFAULTS},
              program=0, accompaniment_program=0),
        Style("arpeggio",
              "Broken-chord arpeggio in eighths rising and falling over 1.5 octaves (1 5 8 10 12 10 8 5), "
              "each note ringing for two steps (violin melody over harp).",
              _pattern_renderer(_arpeggio_pattern), {"note_ticks": 6, "ring": 2, "low": 36, **_ACCOMPANIMENT_DEFAULTS},
              program=40, accompaniment_program=46),
        Style("stride",
              "Stride/ragtime left hand: bass octave on beats 1 and 3 (root, then fifth), a short chord "
              "on beats 2 and 4 (honky-tonk piano).",
              _pattern_renderer(_stride_pattern),
              {"bass_low": 40, "chord_low": 53, "bass_fifth": True, **_ACCOMPANIMENT_DEFAULTS},
              program=3, accompaniment_program=3),
        Style("bossa",
              "Bossa-nova comping: root on 1 and fifth on 3 (dotted quarters), short coloured chords "
              "(6, m7, 7, m7b5; root left to the bass) on the 2-bar clave eighths 0 3 6 | 2 5 (nylon "
              "guitar under a flute melody).",
              _pattern_renderer(_bossa_pattern),
              {"bass_low": 36, "chord_low": 50, "color": True, **_ACCOMPANIMENT_DEFAULTS},
              program=73, accompaniment_program=24),
    ]
}


def list_styles() -> list[str]:
    """Names of the registered styles, in registry order.

    >>> list_styles()[:3]
    ['straight', 'swing', 'shuffle']
    """
    return list(STYLES)


def get_style(name: str) -> Style:
    """The registered style ``name``; raises ValueError listing the known names."""
    try:
        return STYLES[name]
    except KeyError:
        raise UserError(f"unknown style {name!r}; known styles: {', '.join(STYLES)}") from None


def render_style(piece: Piece, name: str, seed: int = 0, **params: Any) -> Piece:
    """Render ``piece`` in style ``name``; ``params`` override the style's defaults.

    >>> [n.start for n in render_style(Piece([Note(0, 6, 72), Note(6, 6, 74)]), "swing", ratio=3.0).notes]
    [0, 9]
    """
    return get_style(name).render(piece, seed=seed, **params)
