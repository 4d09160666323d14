"""A real-world-like test set: StyleBench test-split chorales made to look like MIDI files from outside.

Users who try the demo model on their own files bring multi-track songs with drums, expressive
performances recorded without a click, three-minute pieces, odd meters, pickups and tempo changes.
This script makes such files from what mstoolkit can ship -- the pieces of StyleBench v1's *test*
split (``data_samples/stylebench/test_split_v1.json``: Bach chorales no model was trained on, read
from music21's corpus exactly as StyleBench reads them) and General-MIDI programs -- so that every
file has a clean score and therefore a ground truth for every style.

Kinds (each isolates one way real files differ from StyleBench's content; ``long`` combines two):

``humanised``
    The score *performed*: a base tempo drawn from 84-104 bpm that drifts slowly by +-8 % (a sine of
    0.6-1.4 cycles over the piece), a lead-in of 0.3-0.8 s, every onset jittered by N(0, 25 ms)
    (clipped to +-75 ms; the notes of a chord move independently), durations 80-98 % of the
    performed value +- N(0, 15 ms), velocities following a phrase curve +-N(0, 9) with the top voice
    louder. Written as one piano track (program 0) at 480 ticks per quarter with a fixed 120 bpm
    header and pretty_midi's default 4/4 -- a keyboard recording without a click: the file's beats and bar
    lines mean nothing.
``multitrack``
    An arrangement on the score's grid: the top voice (skyline, ``styles.melody``) on a lead/piano
    program, the lowest voice (the skyline from below) on a GM bass program (32-39), the inner voices
    on a pad/strings/e-piano program, and a GM drum track on channel 10 (kick on beat 1 and mid-bar,
    snare on the other even-numbered beats, closed hi-hat on every half beat, a crash every 8 bars),
    with per-track velocities.
``long``
    About ``--long-seconds`` (default 180 s) of music: test-split pieces in 4/4 laid end to end on
    bar lines at 120 bpm until the length is reached, arranged as ``multitrack`` (a 3-minute song).
``odd_meter``
    A 4/4 piece re-barred in 5/4 (the notes unchanged, the file says 5/4; ``--odd-meter 7/8`` for another
    meter), one piano track.
``pickup``
    A 4/4 piece that opens with an anacrusis, written the way most files are: the pickup at time 0 and
    4/4 from there, so every bar line of the file falls in the wrong place (the clean score keeps
    music21's padded pickup bar and the true bar lines). One piano track.
``tempo_change``
    A piece whose tempo drops from its own tempo to 70 % of it at the middle bar line and slows
    further (a ritardando, tempo events every beat) over the last two bars. One piano track, on grid.

What is stored per file (``<out>/<name>.mid``, ``<out>/<name>.clean.mid`` and ``<out>/<name>.json``)
    ``score``: the clean score as a :class:`~mstoolkit.piece.Piece` (``mstoolkit.data.piece_to_dict``)
    on its own, musically correct grid: the source notes with the file's programs and velocities
    and, for the arrangements, the drum notes (``is_drum``); ``time_map``: knots ``[score_tick,
    seconds]`` (piecewise linear) that say when each score tick sounds in the MIDI file -- the
    performance for ``humanised``, the shifted tempo map for ``pickup``, the tempo map otherwise;
    plus the sources, the note counts and the drawn parameters. ``manifest.json`` lists the files.
    ``<name>.clean.mid`` is the control: the clean score's pitched notes as a plain one-track file on
    the score's own grid (program 0) -- StyleBench-like input of the same music, so a benchmark can
    tell what the real-world form costs from what the model misses anyway (for ``odd_meter`` and
    ``tempo_change`` it is the file itself, byte for byte).

Ground truth (what ``benchmarks/real_world.py`` scores against): for style ``s``, the target is
``render_style(clean_pitched, s, seed=0)`` where ``clean_pitched`` is ``score`` without its drum notes
(the renderers pass drums through, and every note measure of ``mstoolkit.metrics`` ignores drums, so
drums are scored apart: whether the output still holds the input's drum track). To compare with an
output that lives on another grid (the file's, or a re-gridded one), the target's ticks are turned
into seconds with ``time_map`` and then into the output's ticks with the output's own tempo map
(:func:`place_on_grid`).

Determinism: the pieces drawn, every random choice and the bytes written depend only on ``--seed``
(and on music21's corpus, whose version is recorded).

    PYTHONPATH=. python benchmarks/real_world_set.py --out /tmp/real_world --seed 0
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from mstoolkit.data import cache_dir, parse_meter, piece_from_dict, piece_to_dict, rebar  # noqa: E402
from mstoolkit.piece import TICKS_PER_QUARTER, Note, Piece, TempoChange, TimeSignature  # noqa: E402
from mstoolkit.styles import beat_ticks, melody  # noqa: E402

Q = TICKS_PER_QUARTER
SET_VERSION = 1
FORMAT = "mstoolkit.real_world_set"
KINDS = ("humanised", "multitrack", "long", "odd_meter", "pickup", "tempo_change")
DEFAULT_COUNTS = {"humanised": 4, "multitrack": 4, "long": 1, "odd_meter": 2, "pickup": 2, "tempo_change": 2}
TEST_SPLIT = ROOT / "data_samples" / "stylebench" / "test_split_v1.json"

# General MIDI programs drawn for the arrangements
MELODY_PROGRAMS = (0, 4, 73, 80, 81)  # piano, e-piano, flute, square lead, saw lead
INNER_PROGRAMS = (48, 49, 5, 88, 89)  # strings, slow strings, e-piano 2, new-age pad, warm pad
BASS_PROGRAMS = (32, 33, 34, 35, 38)  # acoustic, finger, pick, fretless, synth bass
KICK, SNARE, HIHAT, CRASH = 36, 38, 42, 49  # GM percussion keys (channel 10)

# the humanised performance
HUMAN_BPM = (84.0, 104.0)  # base tempo range
HUMAN_DRIFT = 0.08  # +-8 % tempo drift
HUMAN_ONSET_SD = 0.025  # s
HUMAN_ONSET_CLIP = 0.075  # s
HUMAN_DURATION_SD = 0.015  # s
FILE_BPM = 120.0  # the header tempo of a humanised file


# ----------------------------------------------------------------------------- small helpers
def stem(name: str) -> str:
    """``"bach/bwv268"`` -> ``"bwv268"``."""
    return name.rsplit("/", 1)[-1].replace("#", "_")


def pitched(piece: Piece) -> Piece:
    """The piece without its drum notes."""
    return piece.replace(notes=[n for n in piece.notes if not n.is_drum])


def single_meter(piece: Piece, numerator: int = 4, denominator: int = 4) -> bool:
    return [(ts.numerator, ts.denominator) for ts in piece.time_signatures] == [(numerator, denominator)]


def pickup_ticks(piece: Piece) -> int:
    """Length of the leading rest music21 pads a pickup bar with (0: no pickup)."""
    first = min(n.start for n in piece.notes)
    return first if 0 < first < piece.time_signatures[0].bar_ticks else 0


def tempo_time_map(piece: Piece, shift: int = 0) -> np.ndarray:
    """Knots ``(K, 2)`` of ``[score_tick, seconds]`` for a file that plays ``piece`` by its tempo map,
    with score tick ``shift`` at time 0 (``pickup``)."""
    end = piece.end_tick + 4 * Q
    ticks = sorted({0, shift, end, *(t.tick for t in piece.tempos if t.tick < end)})
    zero = piece.tick_to_seconds(shift)
    return np.array([[t, piece.tick_to_seconds(t) - zero] for t in ticks], dtype=np.float64)


def score_seconds(time_map: np.ndarray, ticks: Sequence[float] | np.ndarray) -> np.ndarray:
    """Seconds at which score ``ticks`` sound in the file (linear between knots, and beyond the ends
    with the slope of the first / last segment)."""
    ticks = np.asarray(ticks, dtype=np.float64)
    x, y = time_map[:, 0], time_map[:, 1]
    out = np.interp(ticks, x, y)
    if len(x) > 1:
        lo, hi = ticks < x[0], ticks > x[-1]
        out[lo] = y[0] + (ticks[lo] - x[0]) * (y[1] - y[0]) / (x[1] - x[0])
        out[hi] = y[-1] + (ticks[hi] - x[-1]) * (y[-1] - y[-2]) / (x[-1] - x[-2])
    return out


def seconds_to_ticks(piece: Piece, seconds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Fractional grid ticks of ``piece`` (by its tempo map) at which ``seconds`` fall: the inverse of
    ``Piece.tick_to_seconds`` (times before 0 extrapolate with the first tempo)."""
    seconds = np.asarray(seconds, dtype=np.float64)
    tempos = piece.tempos
    starts_tick = np.array([t.tick for t in tempos], dtype=np.float64)
    starts_sec = np.array([piece.tick_to_seconds(t.tick) for t in tempos])
    bpm = np.array([t.bpm for t in tempos])
    i = np.clip(np.searchsorted(starts_sec, seconds, side="right") - 1, 0, len(tempos) - 1)
    return starts_tick[i] + (seconds - starts_sec[i]) * bpm[i] * Q / 60.0


def place_on_grid(piece: Piece, time_map: np.ndarray, grid: Piece, grid_map: np.ndarray | None = None) -> Piece:
    """``piece`` (on the clean score's grid) moved onto ``grid``'s time axis: each onset and offset
    goes score tick -> seconds in the file (``time_map``) -> ticks of ``grid`` (by its tempo map, or by
    ``grid_map``, knots ``[grid_tick, seconds]`` as :func:`fit_grid_map` makes for a re-gridded piece),
    rounded half up; a note keeps at least 1 tick. The result carries ``grid``'s tempo map and time
    signatures. This is how a target is compared with an output that lives on the file's (or a
    re-gridded) grid."""
    if not piece.notes:
        return Piece([], grid.tempos, grid.time_signatures, piece.key, piece.name)
    starts = np.array([n.start for n in piece.notes], dtype=np.float64)
    ends = np.array([n.end for n in piece.notes], dtype=np.float64)
    if grid_map is None:
        def to_ticks(seconds):
            return seconds_to_ticks(grid, seconds)
    else:
        def to_ticks(seconds):  # the inverse of grid_map: seconds -> grid ticks
            return score_seconds(grid_map[:, ::-1], seconds)
    on = np.floor(to_ticks(score_seconds(time_map, starts)) + 0.5).astype(int)
    off = np.floor(to_ticks(score_seconds(time_map, ends)) + 0.5).astype(int)
    notes = [dataclasses.replace(n, start=max(int(a), 0), duration=max(int(b) - int(a), 1))
             for n, a, b in zip(piece.notes, on, off)]
    return Piece(notes, list(grid.tempos), list(grid.time_signatures), piece.key, piece.name).normalize()


def fit_grid_map(regridded: Piece, source: Piece) -> np.ndarray | None:
    """Knots ``[tick of regridded, seconds in the file]`` (K, 2), strictly increasing in both, fitted from
    the notes themselves: ``regridded`` is ``source`` (the file as ``load_piece`` reads it) put on
    another grid, e.g. by beat tracking. For each pitch whose note count is the same in both, the k-th
    note of one is paired with the k-th of the other; each tick of ``regridded`` gets the median file
    time of its notes, smoothed by a running median over 5 ticks, and ticks whose times would run
    backwards are dropped. This samples the
    re-gridding's own time map at the notes, so a target can be placed exactly the way the content
    was. None when fewer than two ticks are left."""
    def by_pitch(piece: Piece, times) -> dict[int, list[float]]:
        out: dict[int, list[float]] = {}
        for n in sorted((n for n in piece.notes if not n.is_drum), key=lambda n: (n.pitch, n.start)):
            out.setdefault(n.pitch, []).append(times(n.start))
        return out

    file_times = by_pitch(source, lambda tick: source.tick_to_seconds(tick))
    grid_ticks = by_pitch(regridded, float)
    pairs: dict[float, list[float]] = {}
    for pitch, ticks in grid_ticks.items():
        times = file_times.get(pitch, [])
        if len(times) == len(ticks):
            for tick, sec in zip(ticks, times):
                pairs.setdefault(tick, []).append(sec)
    ticks = sorted(pairs)
    medians = np.array([np.median(pairs[t]) for t in ticks])
    # a running median over 5 neighbours, so one mis-paired note cannot bend the map
    padded = np.pad(medians, 2, mode="edge")
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(padded, 5), axis=1) if len(medians) else medians
    knots, last = [], -np.inf
    for tick, sec in zip(ticks, smooth.tolist()):
        if sec > last:
            knots.append((tick, sec))
            last = sec
    return np.array(knots, dtype=np.float64) if len(knots) >= 2 else None


# ----------------------------------------------------------------------------- arrangement
def bassline(piece: Piece) -> list[Note]:
    """The lowest voice: at each onset the lowest note starting there, if no note that started earlier
    and still sounds is as low or lower (the mirror image of ``styles.melody``, notes uncut)."""
    notes = [n for n in piece.notes if not n.is_drum]
    by_start: dict[int, Note] = {}
    for n in notes:
        best = by_start.get(n.start)
        if best is None or (n.pitch, -n.duration) < (best.pitch, -best.duration):
            by_start[n.start] = n
    out, active, i = [], [], 0
    for t in sorted(by_start):
        while i < len(notes) and notes[i].start < t:
            active.append(notes[i])
            i += 1
        active = [n for n in active if n.end > t]
        low = by_start[t]
        if all(n.pitch > low.pitch for n in active):
            out.append(low)
    return out


def _velocity(rng: np.random.Generator, centre: float, spread: float = 6.0) -> int:
    return int(np.clip(round(centre + rng.normal(0.0, spread)), 1, 127))


def drum_track(score: Piece, rng: np.random.Generator) -> list[Note]:
    """A GM drum pattern on the score's bar grid up to its last bar: kick on beat 1 (and mid-bar when a
    bar has 4 or more beats), snare on the other even-numbered beats (2, 4, ...; beat 3 in 3-beat bars),
    closed hi-hat on every half beat, a crash on the first beat of every 8th bar."""
    notes: list[Note] = []
    end = score.end_tick
    for index, bar in enumerate(score.bar_starts()):
        ts = score.time_signature_at(bar)
        beat = beat_ticks(ts)
        n_beats = max(1, ts.bar_ticks // beat)
        for b in range(n_beats):
            tick = bar + b * beat
            if tick >= end:
                break
            if b == 0 or (n_beats >= 4 and n_beats % 2 == 0 and b == n_beats // 2):
                notes.append(Note(tick, 3, KICK, _velocity(rng, 108), 0, True))
            elif b % 2 == 1 or (n_beats == 3 and b == 2):
                notes.append(Note(tick, 3, SNARE, _velocity(rng, 100), 0, True))
            for half in (0, beat // 2):
                if tick + half < end:
                    notes.append(Note(tick + half, 2, HIHAT, _velocity(rng, 72 if half else 84, 8), 0, True))
        if index % 8 == 0 and bar < end:
            notes.append(Note(bar, 12, CRASH, _velocity(rng, 96), 0, True))
    return notes


def arrange(score: Piece, rng: np.random.Generator) -> tuple[Piece, dict[str, int]]:
    """``score`` as a band arrangement: melody / inner voices / bass on three GM programs (drawn) with
    per-track velocities, plus :func:`drum_track`. Returns ``(arranged score, programs)``."""
    programs = {"melody": int(rng.choice(MELODY_PROGRAMS)), "inner": int(rng.choice(INNER_PROGRAMS)),
                "bass": int(rng.choice(BASS_PROGRAMS))}
    source = pitched(score)
    top = {(n.start, n.pitch) for n in melody(source)}
    low = {(n.start, n.pitch) for n in bassline(source)} - top
    centre = {"melody": 96, "inner": 68, "bass": 90}
    notes = []
    for n in source.notes:
        role = "melody" if (n.start, n.pitch) in top else "bass" if (n.start, n.pitch) in low else "inner"
        notes.append(dataclasses.replace(n, program=programs[role], velocity=_velocity(rng, centre[role])))
    notes += drum_track(source, rng)
    return score.replace(notes=notes).normalize(), programs


# ----------------------------------------------------------------------------- the humanised performance
def humanise(score: Piece, rng: np.random.Generator) -> tuple[bytes, np.ndarray, dict[str, float]]:
    """Perform ``score`` (see the module docstring): ``(MIDI bytes, time map knots, parameters)``.
    The time map gives the *ideal* (unjittered) performed time of every score tick."""
    import pretty_midi

    bpm0 = float(rng.uniform(*HUMAN_BPM))
    cycles = float(rng.uniform(0.6, 1.4))
    phase = float(rng.uniform(0.0, 2 * math.pi))
    lead_in = float(rng.uniform(0.3, 0.8))
    span = score.end_tick + 4 * Q
    mid = np.arange(span) + 0.5  # tempo at the middle of each tick
    factor = 1.0 + HUMAN_DRIFT * np.sin(2 * math.pi * cycles * mid / span + phase)
    seconds = lead_in + np.r_[0.0, np.cumsum(60.0 / (bpm0 * factor * Q))]  # (span + 1,)
    knots = np.stack([np.arange(span + 1, dtype=np.float64), seconds], axis=1)

    notes = pitched(score).notes
    top = {(n.start, n.pitch) for n in melody(pitched(score))}
    onsets = seconds[[n.start for n in notes]] + np.clip(
        rng.normal(0.0, HUMAN_ONSET_SD, len(notes)), -HUMAN_ONSET_CLIP, HUMAN_ONSET_CLIP)
    held = seconds[[n.end for n in notes]] - seconds[[n.start for n in notes]]
    lengths = np.maximum(held * rng.uniform(0.8, 0.98, len(notes)) + rng.normal(0.0, HUMAN_DURATION_SD, len(notes)),
                         0.04)
    offsets = onsets + lengths
    phrase_phase = float(rng.uniform(0.0, 2 * math.pi))
    velocity = (64 + 14 * np.sin(2 * math.pi * 2 * np.array([n.start for n in notes]) / span + phrase_phase)
                + np.array([8.0 if (n.start, n.pitch) in top else 0.0 for n in notes])
                + rng.normal(0.0, 9.0, len(notes)))
    velocity = np.clip(np.round(velocity), 20, 118).astype(int)
    # a note must end before the next note of its pitch starts (MIDI cannot hold both)
    by_pitch: dict[int, list[int]] = {}
    for i, n in enumerate(notes):
        by_pitch.setdefault(n.pitch, []).append(i)
    for idx in by_pitch.values():
        idx.sort(key=lambda i: onsets[i])
        for a, b in zip(idx, idx[1:]):
            offsets[a] = max(min(offsets[a], onsets[b] - 0.005), onsets[a] + 0.01)

    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=FILE_BPM)
    piano = pretty_midi.Instrument(program=0, name="Piano")
    order = np.lexsort((np.array([n.pitch for n in notes]), onsets))
    for i in order:
        piano.notes.append(pretty_midi.Note(velocity=int(velocity[i]), pitch=notes[i].pitch,
                                            start=float(onsets[i]), end=float(offsets[i])))
    pm.instruments.append(piano)
    buffer = io.BytesIO()
    pm.write(buffer)
    params = {"base_bpm": round(bpm0, 3), "drift": HUMAN_DRIFT, "drift_cycles": round(cycles, 3),
              "lead_in_s": round(lead_in, 3), "onset_sd_s": HUMAN_ONSET_SD, "duration_sd_s": HUMAN_DURATION_SD,
              "file_bpm": FILE_BPM}
    return buffer.getvalue(), knots, params


# ----------------------------------------------------------------------------- the kinds
def _bare(piece: Piece, name: str) -> Piece:
    """The source piece as a clean score: pitched notes on program 0, its own tempo map and meter."""
    return Piece([dataclasses.replace(n, program=0) for n in piece.notes if not n.is_drum],
                 list(piece.tempos), list(piece.time_signatures), piece.key, name).normalize()


def make_humanised(source: Piece, name: str, rng: np.random.Generator) -> dict[str, Any]:
    score = _bare(source, name)
    midi, knots, params = humanise(score, rng)
    return {"score": score, "midi": midi, "time_map": knots, "params": params}


def make_multitrack(source: Piece, name: str, rng: np.random.Generator) -> dict[str, Any]:
    score, programs = arrange(_bare(source, name), rng)
    return {"score": score, "midi": score.to_midi_bytes(), "time_map": tempo_time_map(score),
            "params": {"programs": programs}}


def make_long(sources: Sequence[Piece], name: str, rng: np.random.Generator, bpm: float = 120.0) -> dict[str, Any]:
    notes: list[Note] = []
    offset = 0
    for piece in sources:
        notes += [dataclasses.replace(n, start=n.start + offset, program=0) for n in piece.notes if not n.is_drum]
        end = max(n.end for n in notes)
        offset = -(-end // (4 * Q)) * 4 * Q  # the next 4/4 bar line
    plain = Piece(notes, [TempoChange(0, bpm)], [TimeSignature(0, 4, 4)], sources[0].key, name).normalize()
    score, programs = arrange(plain, rng)
    return {"score": score, "midi": score.to_midi_bytes(), "time_map": tempo_time_map(score),
            "params": {"programs": programs, "bpm": bpm}}


def make_odd_meter(source: Piece, name: str, rng: np.random.Generator, meter: str = "5/4") -> dict[str, Any]:
    score = rebar(_bare(source, name), meter)  # as training's meter augmentation re-bars (mstoolkit.data.rebar)
    return {"score": score, "midi": score.to_midi_bytes(), "time_map": tempo_time_map(score),
            "params": {"meter": meter, "was": "4/4"}}


def make_pickup(source: Piece, name: str, rng: np.random.Generator) -> dict[str, Any]:
    score = _bare(source, name)
    shift = pickup_ticks(score)
    if not shift:
        raise ValueError(f"{name}: has no pickup")
    filed = Piece([dataclasses.replace(n, start=n.start - shift) for n in score.notes],
                  [TempoChange(0, score.tempos[0].bpm)] + [TempoChange(t.tick - shift, t.bpm) for t in score.tempos[1:]],
                  [TimeSignature(0, 4, 4)], score.key, name)
    return {"score": score, "midi": filed.to_midi_bytes(), "time_map": tempo_time_map(score, shift),
            "params": {"pickup_ticks": shift, "file_bars": "4/4 counted from the first note"}}


def make_tempo_change(source: Piece, name: str, rng: np.random.Generator) -> dict[str, Any]:
    plain = _bare(source, name)
    bars = plain.bar_starts()
    bpm = plain.tempos[0].bpm
    slow = round(0.7 * bpm, 3)
    tempos = [TempoChange(0, bpm), TempoChange(bars[len(bars) // 2], slow)]
    last_two = bars[-2] if len(bars) >= 4 else bars[-1]
    beat = beat_ticks(plain.time_signature_at(last_two))
    ticks = list(range(last_two, plain.end_tick, beat))
    for k, tick in enumerate(ticks, start=1):  # ritardando down to ~55 % of the opening tempo
        tempos.append(TempoChange(tick, round(slow * (1 - 0.22 * k / len(ticks)), 3)))
    score = plain.replace(tempos=tempos).normalize()
    return {"score": score, "midi": score.to_midi_bytes(), "time_map": tempo_time_map(score),
            "params": {"tempi": [[t.tick, t.bpm] for t in score.tempos]}}


# ----------------------------------------------------------------------------- the set
def test_split_pieces(manifest: str | Path = TEST_SPLIT, progress: bool = True) -> list[Piece]:
    """The pieces of a StyleBench split manifest, read from music21's corpus as StyleBench reads them
    (``mstoolkit.data.music21_corpus``, cached)."""
    from tqdm.auto import tqdm

    from mstoolkit.data import music21_corpus

    names = json.loads(Path(manifest).read_text())["pieces"]
    return [music21_corpus(n, progress=False)[0].replace(name=n)
            for n in tqdm(names, desc="test-split pieces", disable=not progress)]


def plan(pieces: Sequence[Piece], counts: dict[str, int], seed: int, long_seconds: float) -> list[tuple[str, list[Piece]]]:
    """Which source pieces each file is made from: ``[(kind, [pieces])]`` in :data:`KINDS` order.

    The pieces are taken in an order drawn with ``seed``; each short kind takes the next unused piece
    that fits it (odd_meter: a 4/4 piece; pickup: a 4/4 piece with a pickup), falling back to used ones
    when none is left; ``long`` takes 4/4 pieces in the same order until ``long_seconds`` at 120 bpm."""
    rng = np.random.default_rng([seed, 1])
    order = [pieces[i] for i in rng.permutation(len(pieces))]
    fits = {"odd_meter": lambda p: single_meter(p), "pickup": lambda p: single_meter(p) and pickup_ticks(p) > 0}
    used: set[str] = set()
    out: list[tuple[str, list[Piece]]] = []
    for kind in KINDS:
        for _ in range(counts.get(kind, 0)):
            if kind == "long":
                chosen, total = [], 0.0
                for p in (q for q in order if single_meter(q)):
                    chosen.append(p)
                    total += -(-p.end_tick // (4 * Q)) * 4 * 60.0 / 120.0
                    if total >= long_seconds:
                        break
                order = order[1:] + order[:1]  # a second long file starts elsewhere
                out.append((kind, chosen))
                continue
            ok = fits.get(kind, lambda p: True)
            candidates = [p for p in order if ok(p) and p.name not in used] or [p for p in order if ok(p)]
            if not candidates:
                raise ValueError(f"no source piece fits the kind {kind!r}")
            used.add(candidates[0].name)
            out.append((kind, [candidates[0]]))
    return out


MAKERS = {"humanised": make_humanised, "multitrack": make_multitrack, "odd_meter": make_odd_meter,
          "pickup": make_pickup, "tempo_change": make_tempo_change}


def build_set(pieces: Sequence[Piece], out: str | Path, *, seed: int = 0, counts: dict[str, int] | None = None,
              long_seconds: float = 180.0, odd_meter: str = "5/4", progress: bool = True) -> dict[str, Any]:
    """Make the set from ``pieces`` into folder ``out`` (``odd_meter``: the meter odd_meter files are
    re-barred into); returns (and writes) the manifest."""
    from tqdm.auto import tqdm

    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    unknown = set(counts) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = []
    jobs = plan(pieces, counts, seed, long_seconds)
    seen: dict[str, int] = {}
    for job, (kind, sources) in enumerate(tqdm(jobs, desc="building files", disable=not progress)):
        index = seen[kind] = seen.get(kind, -1) + 1
        name = f"{kind}_{index}" if kind == "long" else f"{kind}_{index}_{stem(sources[0].name)}"
        rng = np.random.default_rng([seed, 2, job])
        if kind == "long":
            made = make_long(sources, name, rng)
        elif kind == "odd_meter":
            made = make_odd_meter(sources[0], name, rng, odd_meter)
        else:
            made = MAKERS[kind](sources[0], name, rng)
        score: Piece = made["score"]
        (out / f"{name}.mid").write_bytes(made["midi"])
        clean = pitched(score)
        (out / f"{name}.clean.mid").write_bytes(_bare(clean, name).to_midi_bytes())
        info = {
            "name": name, "kind": kind, "midi": f"{name}.mid", "clean_midi": f"{name}.clean.mid",
            "sources": [p.name for p in sources],
            "pitched_notes": len(clean.notes), "drum_notes": len(score.notes) - len(clean.notes),
            "seconds": round(float(score_seconds(made["time_map"], [clean.end_tick])[0]), 3),
            "bars": len(clean.bar_starts()), "params": made["params"],
        }
        record = {**info, "score": piece_to_dict(score),
                  "time_map": [[float(t), round(float(s), 6)] for t, s in made["time_map"]]}
        (out / f"{name}.json").write_text(json.dumps(record, separators=(",", ":")))
        items.append(info)
    manifest = {"format": FORMAT, "version": SET_VERSION, "seed": seed, "counts": counts,
                "long_seconds": long_seconds, "music21_version": _music21_version(),
                "source_pieces": [p.name for p in pieces], "items": items}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _music21_version() -> str | None:
    try:
        import music21
        return music21.__version__
    except ImportError:
        return None


def load_item(folder: str | Path, item: dict[str, Any] | str) -> dict[str, Any]:
    """One file of a built set: ``{"path", "score" (Piece), "time_map" ((K, 2) array), **info}``."""
    folder = Path(folder)
    name = item if isinstance(item, str) else item["name"]
    record = json.loads((folder / f"{name}.json").read_text())
    record["score"] = piece_from_dict(record["score"])
    record["time_map"] = np.array(record["time_map"], dtype=np.float64)
    record["path"] = folder / record["midi"]
    record["clean_path"] = folder / record["clean_midi"]
    return record


def load_manifest(folder: str | Path) -> dict[str, Any]:
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{folder}: not a real-world set (format {manifest.get('format')!r})")
    return manifest


def default_out(seed: int = 0) -> Path:
    return cache_dir() / f"real_world_v{SET_VERSION}_seed{seed}"


def summary_lines(manifest: dict[str, Any]) -> list[str]:
    """A markdown table of the set: one row per file."""
    lines = ["| file | kind | sources | pitched notes | drum notes | bars | seconds |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for it in manifest["items"]:
        sources = ", ".join(stem(s) for s in it["sources"])
        lines.append(f"| {it['name']} | {it['kind']} | {sources} | {it['pitched_notes']} | {it['drum_notes']} | "
                     f"{it['bars']} | {it['seconds']:.1f} |")
    return lines


def parse_counts(text: Iterable[str] | None) -> dict[str, int]:
    counts = dict(DEFAULT_COUNTS)
    for part in text or []:
        kind, _, n = part.partition("=")
        if kind not in KINDS or not n.isdigit():
            raise argparse.ArgumentTypeError(f"--count expects KIND=N with KIND in {', '.join(KINDS)}, got {part!r}")
        counts[kind] = int(n)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Kinds: " + ", ".join(KINDS) + ". See the module docstring for each.")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder to write (default: <mstoolkit cache>/real_world_v1_seed<SEED>)")
    parser.add_argument("--seed", type=int, default=0, help="drives the pieces drawn and every random choice")
    parser.add_argument("--manifest", type=Path, default=TEST_SPLIT,
                        help="StyleBench split manifest whose pieces are used (default: the v1 test split)")
    parser.add_argument("--count", action="append", metavar="KIND=N",
                        help=f"files of a kind (repeatable); defaults {DEFAULT_COUNTS}")
    parser.add_argument("--long-seconds", type=float, default=180.0, help="length of a long file (default 180)")
    parser.add_argument("--odd-meter", default="5/4", help="meter the odd_meter files are re-barred into "
                        "(default 5/4; the default set's files and their names assume it)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        parse_meter(args.odd_meter)
    except ValueError as err:  # UserError
        parser.error(f"--odd-meter: {err}")
    out = args.out or default_out(args.seed)
    pieces = test_split_pieces(args.manifest, progress=not args.no_progress)
    manifest = build_set(pieces, out, seed=args.seed, counts=parse_counts(args.count),
                         long_seconds=args.long_seconds, odd_meter=args.odd_meter, progress=not args.no_progress)
    print(f"wrote {len(manifest['items'])} files to {out}")
    print("\n".join(summary_lines(manifest)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
