"""Intake: turning a file people bring into what the model reads, with a one-line account of what was done.

    >>> from mstoolkit.piece import sample_paths
    >>> took = intake(sample_paths()["bwv66.6"])
    >>> took.account
    '1 piano track transferred; tempo map from the file (96 bpm, 4/4)'

Students bring real-world MIDI: a pop song with drums and bass, a piano performance recorded without
a click, a long piece with a pickup, odd meters and tempo changes. :func:`intake` reads any of these
(anything :func:`~mstoolkit.piece.load_piece` takes) and returns an :class:`Intake`: ``piece`` (the
pitched notes for the model, on the grid), ``drums`` (drum notes kept aside), ``account`` (one line
saying what was done) and ``details`` (the same as data). :func:`mstoolkit.generate.transfer` runs it
on any content that is not an ``Intake`` already and lays the kept drums back over its output.

**Tracks.** Every pitched track, bass included, is part of the content: an instrument the model never
saw is still content (the tokenizer has a program token for all 128 General MIDI programs, and the
``"straight"`` rendering ``transfer`` applies first gives every note the strings it was trained on),
never dropped. Drum tracks (MIDI channel 10) are kept aside unchanged, with their kit (program) and
channel, and laid back over the transferred output (``drums="keep"``, the default), because the
model never read drums in training (StyleBench content is Bach chorales) and a kit has no pitch
content to re-style: what the model would write for them is noise, while the student's groove is
what they want to hear under the new style. ``drums="transfer"`` gives them to the model anyway. The
account names tracks by their General MIDI family (``pretty_midi.program_to_instrument_class``).

**Timing.** A score or a sequenced file has a reliable grid: its onsets, counted in the file's
quarter notes, fall on sixteenths or eighth-note triplets. A performance recorded without a click
(only the sequencer's default 120 bpm header) does not. :func:`grid_fit` measures it: the fraction of
distinct onsets within ``1/32`` quarter (15 ms at 120 bpm) of a sixteenth / eighth-triplet grid
point, at the best constant offset (a file that starts a little late is still on a grid). Measured on
35 pieces (the 6 shipped samples and 29 Bach chorales of music21's corpus): every clean file scores
1.00; the same pieces made into "performances" (written at a fixed 120 bpm header, onsets jittered
by 22 ms, the tempo drifting +-8 % around 66-112 bpm, or steady but not at 120) score 0.41-0.66,
median 0.45 (a random onset lands within the tolerance about 0.4 of the time). ``timing="auto"`` takes the file's grid at a fit
of :data:`GRID_FIT_THRESHOLD` (0.8) or more, else estimates beats; a DAW's light "humanize" (a few
ms) still fits the file's grid.

**Beat estimation** (``timing="estimate"``, or ``"auto"`` below the threshold): an onset-strength
envelope is made from the note onsets (velocity-weighted impulses at 86 frames/s, drums included:
they carry the beat best), and ``librosa.beat.beat_track`` (Ellis' dynamic-programming tracker:
one global tempo, beats allowed to drift from it) tracks the beats with a tempo prior centred on
105 bpm and ``tightness=30``. Measured on the 35 humanised pieces above (the fraction of notes whose
re-gridded onset is within a sixteenth of the score's, best whole-beat alignment): this tracker
0.98 on average, >= 0.9 on 34/35 pieces; the same with librosa's defaults (prior 120 bpm,
tightness 100) 0.89, 31/35 (slow chorales tracked at the eighth level); ``tightness=10`` 0.57;
``beat_track`` with a time-varying tempo (``librosa.feature.tempo(aggregate=None)``) 0.83, 23/35;
peaks of ``librosa.beat.plp`` 0.54, 10/35; pretty_midi's ``estimate_tempo`` as a constant-tempo grid
from the first onset (no drift handling) 0.20, 0/35. The 105 bpm prior also gets synthetic pop
grooves (drums, bass, chords, drifting +-6 %) at 90-150 bpm at the right level (80-85 bpm ones are
tracked at double time); ``bpm_hint`` moves the prior for a song known to be slower or faster.
Beats are quarter notes, dotted quarters in 6/8, 9/8 and 12/8 (the file's first time signature,
4/4 without one). Each note's onset in seconds becomes a beat position by linear interpolation
between the tracked beats (extrapolated before the first and after the last), then grid ticks,
rounded to sixteenths. Through :func:`intake`, 33 of the 35 humanised pieces get >= 90 % of their
notes back on the score's sixteenth (mean 0.96, at the best whole-beat alignment; 0.3 s a piece).
Bar lines: the music's first beat is given the lead-in that fits its notes best, as for a file that
opens on a pickup (below). Measured with ``benchmarks/pickup_detection.py --performances`` (35
humanised pieces: the 6 samples and the 29 test-split chorales): right on 27 of 35; taking the beat of
the bar on which the most note velocity lands as the downbeat, as before, got 14 of 35 in the same
measurement. The tempo map gets one tempo per bar, the mean of its tracked beats.

**Bar lines of a file on its grid** (``downbeat="auto"``). Most files of a piece that opens on a
pickup start the pickup at tick 0, so every bar line of the file is off, and an accompaniment style
follows the wrong bars. :func:`find_pickup` checks a MIDI file (not a ``Piece`` made in code, whose bar
lines were chosen) that starts at tick 0, is 8 bars or longer, in 3/4, 4/4 or 2/2, with one time
signature: :func:`metric_fit` scores each whole-beat lead-in by where long notes start,
where the harmony changes (both weighed by metrical position against the onsets' own) and how few notes
are held across bar lines; the best is padded as a leading rest, half a bar never (beats 1 and 3 look
alike). Measured with ``benchmarks/pickup_detection.py`` on chorales held out from the choice of cues and
weights (val + test): 41 of 47 files that open on their pickup get their bar lines back (3 half a bar
off, 3 a beat off), 19 of 19 that open on a downbeat and 47 of 47 with a padded pickup keep theirs.
The account says so ("opens on a 1-beat pickup, padded with a 3-beat rest"); ``details["bar_lines"]``
gives ``lead_ticks``, by which the output runs later than the file.

**Errors.** Unreadable input raises :class:`~mstoolkit.piece.MidiError` naming the file and the
reason (as ``load_piece`` does); a file with nothing to transfer, a bad option, or a performance too
short to track raise :class:`~mstoolkit.config.UserError` naming the file.
"""
from __future__ import annotations

import dataclasses
import io
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mstoolkit.config import UserError
from mstoolkit.piece import TICKS_PER_QUARTER, Note, Piece, TempoChange, TimeSignature, load_piece, read_midi

if TYPE_CHECKING:
    import pretty_midi

Q = TICKS_PER_QUARTER
GRID_FIT_THRESHOLD = 0.8  # at or above: the file's own grid is used (evidence in the module docstring)
GRID_FIT_TOLERANCE = 1 / 32  # quarter notes: how far off a grid point an onset may be and still fit
_GRID = np.array([0, 3, 4, 6, 8, 9, 12]) / Q  # sixteenths and eighth-note triplets in one quarter, in quarters
_FPS_SR, _FPS_HOP = 22050, 256  # the onset envelope's nominal sample rate and hop: 86.1 frames per second
DEFAULT_BPM_PRIOR = 105.0  # centre of the tracker's tempo prior (see the module docstring for why 105)
_TIGHTNESS = 30.0  # how strictly beats keep the global tempo (librosa's default, 100, follows drift worse)
_MIN_ONSETS = 8  # fewer distinct onsets than this: too little to track beats from


@dataclass
class Intake:
    """What :func:`intake` made of a file: ``piece`` (the notes for the model, on the grid), ``drums``
    (drum notes kept aside on the same grid, or None), ``account`` (one line) and ``details``.

    ``details`` keys: ``source`` (the name used in messages), ``tracks`` (one dict per track:
    ``name``, ``program``, ``is_drum``, ``family``, ``notes``, ``role`` "transferred" / "kept"),
    ``timing`` ("file" / "estimate" / "score"), ``grid_fit`` (None for a music21 score),
    ``grid_fit_threshold``, ``time_signatures`` (``"n/d"`` strings), ``tempo_bpm`` (min, max), and for
    estimated timing ``beats``: ``method``, ``bpm`` (median), ``drift`` (spread of the per-bar
    tempi: (95th - 5th percentile) / median), ``n_beats``, ``beat_ticks``, ``pickup_beats``, ``grid``.

        >>> str(intake(piece)) == intake(piece).account
        True
    """

    piece: Piece
    drums: Piece | None
    account: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.account

    def with_drums(self, output: Piece, until: int | None = None) -> Piece:
        """``output`` with the kept drums laid over it, unchanged (those starting before ``until``
        ticks, cut there; default: all); ``output`` itself if no drums were kept.

            >>> intake(piece).with_drums(piece) == piece
            True
        """
        if self.drums is None or not self.drums.notes:
            return output
        until = max(self.drums.end_tick, output.end_tick) if until is None else until
        drums = [dataclasses.replace(n, duration=min(n.duration, until - n.start))
                 for n in self.drums.notes if n.start < until]
        return output.replace(notes=output.notes + drums)


def intake(source: Any, *, timing: str = "auto", drums: str = "keep", name: str | None = None,
           bpm_hint: float | None = None, grid: int = 3, downbeat: str = "auto") -> Intake:
    """Read ``source`` (anything ``load_piece`` takes, or an ``Intake``, returned as is) for the model.

    ``timing``: ``"file"`` (the file's tempo map and grid), ``"estimate"`` (beats tracked from the
    notes, see the module docstring) or ``"auto"`` (``"estimate"`` when :func:`grid_fit` is under
    :data:`GRID_FIT_THRESHOLD`). A music21 score always keeps its own grid. ``drums``: ``"keep"``
    (aside, laid back over the output by ``transfer``) or ``"transfer"`` (part of the content).
    ``bpm_hint``: the centre of the beat tracker's tempo prior (default 105 bpm). ``grid``: estimated
    onsets and ends are rounded to this many ticks (3 = sixteenths). ``downbeat``: ``"auto"`` checks
    where the bar lines of a file on its own grid should fall and pads a pickup the file starts on
    with a leading rest (:func:`find_pickup`); ``"file"`` keeps the file's bar lines.

        >>> intake(piece).details["timing"]  # piece: a sample on its grid
        'file'
    """
    if isinstance(source, Intake):
        return source
    if timing not in ("auto", "file", "estimate"):
        raise UserError(f"intake: timing must be 'auto', 'file' or 'estimate', got {timing!r}")
    if drums not in ("keep", "transfer"):
        raise UserError(f"intake: drums must be 'keep' or 'transfer', got {drums!r}")
    if bpm_hint is not None and not 20 <= bpm_hint <= 400:
        raise UserError(f"intake: bpm_hint must be between 20 and 400 bpm, got {bpm_hint}")
    if grid < 1 or Q % grid:
        raise UserError(f"intake: grid must divide {Q} ticks (3 = sixteenths), got {grid}")
    if downbeat not in ("auto", "file"):
        raise UserError(f"intake: downbeat must be 'auto' or 'file', got {downbeat!r}")
    piece, pm, label = _read(source, name)
    tracks = _tracks(piece, pm)
    onsets_q = _onsets_in_quarters(piece, pm)  # (notes,) in the file's quarter notes
    fit = grid_fit(onsets_q) if pm is not None or isinstance(source, Piece) else None  # None: a music21 score
    details: dict[str, Any] = {"source": label, "tracks": tracks, "grid_fit": None if fit is None else round(fit, 3),
                               "grid_fit_threshold": GRID_FIT_THRESHOLD}
    estimate = fit is not None and (timing == "estimate" or (timing == "auto" and fit < GRID_FIT_THRESHOLD))
    if estimate:
        piece, details["beats"] = _estimated_piece(piece, pm, label, bpm_hint, grid)
    details["timing"] = "estimate" if estimate else ("score" if fit is None else "file")
    if details["timing"] == "file" and downbeat == "auto" and pm is not None:  # bar lines of a MIDI file only:
        piece, details["bar_lines"] = _bar_lines(piece)  # a Piece made in code has the bar lines its maker chose
    kept = drums == "keep" and any(n.is_drum for n in piece.notes)
    pitched = [n for n in piece.notes if not (kept and n.is_drum)]
    if not pitched:
        raise UserError(f"{label}: has only drum notes ({len(piece.notes)} on channel 10), nothing pitched to "
                        "transfer; pass drums='transfer' to give the model the drums")
    for track in tracks:
        track["role"] = "kept" if kept and track["is_drum"] else "transferred"
    drum_piece = piece.replace(notes=[n for n in piece.notes if n.is_drum]) if kept else None
    content = piece.replace(notes=pitched)
    details["time_signatures"] = [f"{ts.numerator}/{ts.denominator}" for ts in piece.time_signatures]
    bpms = [t.bpm for t in piece.tempos]
    details["tempo_bpm"] = (min(bpms), max(bpms))
    return Intake(content, drum_piece, _account(details, piece), details)


def grid_fit(onsets_q: np.ndarray, tolerance: float = GRID_FIT_TOLERANCE) -> float:
    """The fraction of distinct onsets (in quarter notes) within ``tolerance`` quarters of a sixteenth
    or eighth-triplet grid point, at the best constant offset (tried in 1/96-quarter steps): 1.0 for a
    score, about 0.4 for a performance recorded without a click (the module docstring has the numbers).

        >>> grid_fit(np.array([0, 0.25, 1 / 3, 1.5, 2.75]))
        1.0
        >>> round(grid_fit(np.random.default_rng(0).uniform(0, 64, 500)), 2)  # onsets anywhere
        0.43
    """
    q = np.unique(np.round(np.asarray(onsets_q, dtype=float), 5))  # (N,)
    if not len(q):
        return 1.0
    if len(q) > 4000:  # plenty for a fraction; keeps (N, 96, 7) small
        q = q[np.linspace(0, len(q) - 1, 4000).astype(int)]
    shifts = np.arange(96) / 96  # (96,) quarters
    frac = (q[:, None] - shifts[None, :]) % 1.0  # (N, 96) position inside the quarter
    distance = np.abs(frac[:, :, None] - _GRID[None, None, :]).min(axis=2)  # (N, 96)
    return float((distance <= tolerance + 1e-9).mean(axis=0).max())


# ------------------------------------------------------------------------------ reading
def _read(source: Any, name: str | None) -> tuple[Piece, "pretty_midi.PrettyMIDI | None", str]:
    """(piece as the file gives it, the PrettyMIDI for exact times and track names or None, label).

    MIDI data is read once (a file object can be read only once); the piece comes from the project's
    reader (symusic, mido fallback), the PrettyMIDI from pretty_midi, which also gives track names
    and note times in seconds. Where pretty_midi cannot read data the project's reader could, the
    piece's own grid ticks stand in for exact times (12 per quarter)."""
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(source, "read"):
        piece, data, label = read_midi(source, name)
        import pretty_midi

        try:
            pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
        except Exception:  # pretty_midi is stricter than symusic on some damaged files; the piece suffices
            pm = None
        return piece, pm, label
    pm_module = sys.modules.get("pretty_midi")
    if pm_module is not None and isinstance(source, pm_module.PrettyMIDI):
        return load_piece(source, name=name), source, name or "<PrettyMIDI>"
    piece = load_piece(source, name=name)  # a Piece or a music21 stream; TypeError for anything else
    return piece, None, piece.name or name or f"<{type(source).__name__}>"


def _family(program: int, is_drum: bool) -> str:
    import pretty_midi

    return "drums" if is_drum else pretty_midi.program_to_instrument_class(program).lower()


def _tracks(piece: Piece, pm: "pretty_midi.PrettyMIDI | None") -> list[dict[str, Any]]:
    """One dict per track with notes: the file's tracks (pretty_midi instruments) where known, else
    the piece's (program, is_drum) groups."""
    import pretty_midi

    if pm is not None and any(inst.notes for inst in pm.instruments):
        groups = [(inst.name.strip(), inst.program, inst.is_drum, len(inst.notes)) for inst in pm.instruments
                  if inst.notes]
    else:
        counts: dict[tuple[int, bool], int] = {}
        for n in piece.notes:
            counts[n.program, n.is_drum] = counts.get((n.program, n.is_drum), 0) + 1
        groups = [("", program, is_drum, count) for (program, is_drum), count in sorted(counts.items())]
    return [{"name": track_name or ("Drums" if is_drum else pretty_midi.program_to_instrument_name(program)),
             "program": int(program), "is_drum": bool(is_drum), "family": _family(program, is_drum), "notes": count}
            for track_name, program, is_drum, count in groups]


def _onsets_in_quarters(piece: Piece, pm: "pretty_midi.PrettyMIDI | None") -> np.ndarray:
    """Every note onset in the file's quarter notes: exact MIDI ticks / resolution from the PrettyMIDI,
    else the piece's grid ticks / 12. Shape (notes,)."""
    if pm is not None:
        times = [n.start for inst in pm.instruments for n in inst.notes]
        return np.array([pm.time_to_tick(t) for t in times], dtype=float) / pm.resolution
    return np.array([n.start for n in piece.notes], dtype=float) / Q


def _note_seconds(piece: Piece, pm: "pretty_midi.PrettyMIDI | None") -> list[tuple[float, float, Note]]:
    """(start s, end s, note with program/pitch/velocity/drum flag) of every note, from the PrettyMIDI
    when there is one, else from the piece's ticks through its tempo map."""
    if pm is not None:
        return [(n.start, n.end, Note(0, 1, n.pitch, max(1, n.velocity), inst.program, inst.is_drum))
                for inst in pm.instruments for n in inst.notes]
    ticks = np.array([t.tick for t in piece.tempos], dtype=float)  # (changes,)
    seconds_per_tick = np.array([60.0 / (t.bpm * Q) for t in piece.tempos])  # (changes,)
    at = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * seconds_per_tick[:-1])])  # (changes,) seconds

    def seconds(tick: int) -> float:
        i = int(np.searchsorted(ticks, tick, side="right")) - 1
        return float(at[i] + (tick - ticks[i]) * seconds_per_tick[i])

    return [(seconds(n.start), seconds(n.end), n) for n in piece.notes]


# ------------------------------------------------------------------------------ beats
def _beat_ticks(ts: TimeSignature) -> int:
    """The tracked beat in ticks: a dotted quarter in 6/8, 9/8, 12/8, else a quarter."""
    return 3 * Q // 2 if ts.denominator == 8 and ts.numerator % 3 == 0 and ts.numerator > 3 else Q


def track_beats(onsets: np.ndarray, velocities: np.ndarray, bpm_hint: float | None = None) -> np.ndarray:
    """Beat times (seconds) of a performance from its note onsets (seconds) and velocities:
    ``librosa.beat.beat_track`` on a velocity-weighted onset envelope (the module docstring says why
    this tracker and these settings).

        >>> beats = track_beats(np.arange(32) * 0.5, np.full(32, 80))  # 120 bpm
        >>> bool(np.allclose(np.diff(beats), 0.5, atol=0.02))
        True
    """
    import librosa

    fps = _FPS_SR / _FPS_HOP
    frames = np.rint(np.asarray(onsets) * fps).astype(int)  # (notes,)
    envelope = np.zeros(frames.max() + int(2 * fps))  # (frames,) 2 s of silence after the last onset
    np.add.at(envelope, frames, np.asarray(velocities, dtype=float) / 127)
    kernel = np.exp(-0.5 * np.arange(-4, 5) ** 2)  # a Gaussian of one frame: onsets 12 ms apart blend
    envelope = np.convolve(envelope, kernel, mode="same")
    _, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=_FPS_SR, hop_length=_FPS_HOP, units="time",
                                       start_bpm=bpm_hint or DEFAULT_BPM_PRIOR, tightness=_TIGHTNESS, trim=False)
    return np.asarray(beats, dtype=float)


def _extend(beats: np.ndarray, first: float, last: float) -> np.ndarray:
    """Beats extended by whole beat periods (the neighbouring interval) until they cover
    ``[first, last]``, the first beat at most a 32nd-ish (60 ms) after ``first``."""
    head, tail = list(beats[:2]), list(beats[-2:])
    before = []
    while (before[-1] if before else beats[0]) > first - 0.06:
        before.append((before[-1] if before else beats[0]) - (head[1] - head[0]))
    after = []
    while (after[-1] if after else beats[-1]) < last + 0.06:
        after.append((after[-1] if after else beats[-1]) + (tail[1] - tail[0]))
    return np.concatenate([before[::-1], beats, after])


def _estimated_piece(piece: Piece, pm: "pretty_midi.PrettyMIDI | None", label: str, bpm_hint: float | None,
                     grid: int) -> tuple[Piece, dict[str, Any]]:
    """The piece re-timed on tracked beats (see the module docstring), and what was found."""
    rows = _note_seconds(piece, pm)
    starts = np.array([r[0] for r in rows])  # (notes,) seconds
    ends = np.array([max(r[1], r[0]) for r in rows])  # (notes,)
    velocities = np.array([r[2].velocity for r in rows])  # (notes,)
    if len(np.unique(np.round(starts, 2))) < _MIN_ONSETS:
        raise UserError(f"{label}: too few notes to estimate beats from ({len(starts)} notes); "
                        "use timing='file'")
    beats = track_beats(starts, velocities, bpm_hint)
    if len(beats) < 2:
        raise UserError(f"{label}: no steady beat found in the notes; use timing='file'")
    beats = _extend(beats, starts.min(), ends.max())  # (beats,)
    ts = piece.time_signatures[0]
    beat = _beat_ticks(ts)
    position = np.interp(starts, beats, np.arange(len(beats)))  # (notes,) in beats
    end_position = np.interp(ends, beats, np.arange(len(beats)))  # (notes,)
    bar_beats = ts.bar_ticks // beat if ts.bar_ticks % beat == 0 else 1
    # The bar lines: the music's first beat put at the lead-in that fits the notes best (:func:`_best_lead`,
    # as for a file opening on a pickup), the notes counted from that beat.
    first = int(np.rint(position.min()))  # the beat the music starts on (0 or 1: the tracker's first beat)
    pitched = [dataclasses.replace(r[2], start=int(round((a - first) * beat / grid) * grid),
                                   duration=int(max(grid, round((b - a) * beat / grid) * grid)))
               for r, a, b in zip(rows, position, end_position) if not r[2].is_drum]
    lead = _best_lead(pitched, ts.bar_ticks, beat) // beat if pitched and bar_beats > 1 else 0
    pickup = (lead - first) % bar_beats  # beats of leading rest before the tracker's first beat

    def to_ticks(beats_position: np.ndarray) -> np.ndarray:
        ticks = (beats_position + pickup) * beat  # (notes,)
        return (np.floor(ticks / grid + 0.5) * grid).astype(np.int64)

    start_ticks, end_ticks = to_ticks(position), to_ticks(end_position)
    notes = [dataclasses.replace(r[2], start=int(s), duration=int(max(grid, e - s)))
             for r, s, e in zip(rows, start_ticks, end_ticks)]
    # One tempo per bar: the mean of its beats' tempi (quarter-note bpm), bar lines every bar_beats beats.
    beat_bpm = 60.0 / np.diff(beats) * beat / Q  # (beats - 1,) quarter notes per minute over each beat
    index = np.arange(len(beat_bpm)) + pickup  # beat number counted from tick 0
    bar_of_beat = index // bar_beats
    tempos = []
    for bar in np.unique(bar_of_beat):
        bpm = float(np.mean(beat_bpm[bar_of_beat == bar]))
        tempos.append(TempoChange(int(bar * bar_beats * beat), round(bpm, 2)))
    tempos[0] = TempoChange(0, tempos[0].bpm)
    bar_bpm = np.array([t.bpm for t in tempos])
    median = float(np.median(bar_bpm))
    info = {"method": "librosa.beat.beat_track", "bpm": round(median, 1),
            "drift": round(float(np.percentile(bar_bpm, 95) - np.percentile(bar_bpm, 5)) / median, 3),
            "n_beats": int(len(beats)), "beat_ticks": beat, "pickup_beats": int(pickup), "grid": grid}
    sig = TimeSignature(0, ts.numerator, ts.denominator)
    re_timed = Piece(notes, tempos, [sig], piece.key, piece.name).normalize()
    return re_timed.validate(label), info


# ------------------------------------------------------------------------------ bar lines of a file on its grid
# How much each cue counts in :func:`metric_fit`: chosen by a grid search over {0, 0.5, 1, 2} for five
# cues on the train-split 4/4 and 3/4 chorales, each as a file opening on its pickup and as a file with
# its bar lines right; two more cues (bass changes, where the longest notes start) got weight 0 and went.
_CUE_WEIGHTS = {"duration": 2.0, "harmony": 0.5, "ties": 0.5}
_ONE_BEAT_PRIOR = 0.05  # a one-beat pickup is taken if it scores this close to the best shift (train split)
_FIT_BAR_TICKS = (36, 48)  # bars of three and four quarters: the meters the cues were measured on
_MIN_FIT_BARS = 8  # shorter music keeps its bar lines: 5 of 100 StyleBench 4-bar windows were moved wrongly
_FIT_BARS = 64  # the cues are read from the first 64 bars: plenty of evidence, bounded cost on long songs


def metric_fit(notes: list[Note], bar_ticks: int, lead_ticks: int = 0) -> dict[str, float]:
    """How well bar lines every ``bar_ticks`` fit ``notes`` (pitched) once a rest of ``lead_ticks``
    is put before them: three cues of a downbeat and their weighted ``score`` (higher fits better).

    Each onset (the notes starting together) gets a metrical weight: 2 on a bar line, 1 half-way
    through a bar of an even number of beats, else 0. ``duration`` and ``harmony`` are the weighted
    shares of the onsets' length (the longest note starting there) and of harmony changes (the set of
    sounding pitch classes changes), minus the onsets' own mean weight: long notes and new chords
    lean to strong beats. ``ties`` is minus the share of notes held across a bar line.

        >>> whole_notes = [Note(i * 48, 48, 60 + i % 2) for i in range(8)]
        >>> metric_fit(whole_notes, 48)["score"] > metric_fit(whole_notes, 48, lead_ticks=12)["score"]
        True
    """
    s = np.array([n.start for n in notes], dtype=np.int64) + lead_ticks  # (notes,)
    d = np.array([n.duration for n in notes], dtype=np.int64)  # (notes,)
    p = np.array([n.pitch for n in notes], dtype=np.int64)  # (notes,)
    onsets, which = np.unique(s, return_inverse=True)  # (onsets,), (notes,)
    length = np.zeros(len(onsets))
    np.maximum.at(length, which, d)  # (onsets,) the longest note starting there
    sounding = (s[None, :] <= onsets[:, None]) & ((s + d)[None, :] > onsets[:, None])  # (onsets, notes)
    pitch_class = (p[:, None] % 12 == np.arange(12)[None, :]).astype(np.float32)  # (notes, 12)
    chroma = sounding.astype(np.float32) @ pitch_class > 0  # (onsets, 12) pitch classes sounding at each onset
    harmony_change = np.r_[1.0, (chroma[1:] != chroma[:-1]).any(axis=1)]  # (onsets,)
    position = onsets % bar_ticks  # (onsets,)
    even = bar_ticks % (2 * Q) == 0
    weight = np.where(position == 0, 2.0, np.where(even & (2 * position == bar_ticks), 1.0, 0.0))  # (onsets,)
    next_bar = (s // bar_ticks + 1) * bar_ticks  # (notes,)
    # Measured against the onsets' own mean weight, so music with nothing to tell the bar lines apart
    # (even notes, say) scores the same for every shift, whatever its length.
    cues = {"duration": float((weight * length).sum() / length.sum() - weight.mean()),
            "harmony": float((weight * harmony_change).sum() / harmony_change.sum() - weight.mean()),
            "ties": -float(np.mean(s + d > next_bar))}
    cues["score"] = sum(_CUE_WEIGHTS[name] * value for name, value in cues.items())
    return cues


def find_pickup(piece: Piece) -> int:
    """Ticks of rest to put before ``piece`` so that its bar lines fall where its music says they
    should: 0 when the file's own bar lines fit best, e.g. 36 (three beats of 4/4) for a file that
    starts on a one-beat pickup at tick 0.

    Only a file whose first note starts at tick 0 is checked: one that starts after a rest has placed
    its first note itself (a padded pickup, a count-in). Candidates are whole beats of the file's
    (only) time signature, and :func:`metric_fit` scores each; the best is taken, or a one-beat pickup
    where that scores within 0.05 of the best (pickups of one beat are the common case). A shift of
    exactly half a bar is never taken: beats 1 and 3 of a 4/4 bar look alike, and on the chorales the
    cues favoured the wrong half as often as the right one, while a file's own bar lines are right far
    more often; so in an even meter the cues decide only whether the strong beats are the file's odd
    or even ones. Only bars of three or four quarter notes (3/4, 4/4, 2/2)
    are fitted, the meters the cues were measured on: files in other meters (5/4, 6/8, 7/8...), with a
    meter change, or with too little music (under 8 onsets or 8 bars) keep their bar lines (0).

        >>> find_pickup(piece) in range(0, piece.time_signatures[0].bar_ticks, 12)
        True
    """
    if len(piece.time_signatures) != 1:
        return 0
    bar = piece.time_signatures[0].bar_ticks
    beat = _beat_ticks(piece.time_signatures[0])
    pitched = [n for n in piece.notes if not n.is_drum and n.start < _FIT_BARS * bar]  # sorted by start
    if bar not in _FIT_BAR_TICKS or beat != Q or not pitched or len({n.start for n in pitched}) < 8 \
            or piece.end_tick - pitched[0].start < _MIN_FIT_BARS * bar:
        return 0
    if pitched[0].start > 0:  # music that starts after a rest has placed its first note itself
        return 0
    return _best_lead(pitched, bar, beat)


def _best_lead(pitched: list[Note], bar: int, beat: int) -> int:
    """The lead-in (ticks, whole beats) that fits music starting at tick 0 best: half a bar never, a
    one-beat pickup where it scores within ``_ONE_BEAT_PRIOR`` of the best (see :func:`find_pickup`)."""
    candidates = [k for k in range(0, bar, beat) if 2 * k != bar]  # (<= beats per bar,) lead-in ticks
    scores = {k: metric_fit(pitched, bar, k)["score"] for k in candidates}
    best = max(candidates, key=lambda k: (scores[k], -k))  # ties keep the first onset on a bar line
    one_beat = bar - beat  # the lead-in of a one-beat pickup, by far the most common (221 of 239 chorales)
    if best and one_beat in scores and scores[one_beat] >= scores[best] - _ONE_BEAT_PRIOR:
        return one_beat
    return best


def _bar_lines(piece: Piece) -> tuple[Piece, dict[str, Any]]:
    """The piece with a found pickup padded by a leading rest (tempo changes after tick 0 move with
    the notes), and what was done: ``method``, ``lead_ticks``, ``pickup_beats`` (0: none)."""
    lead = find_pickup(piece)
    bar = piece.time_signatures[0].bar_ticks
    info = {"method": "metric fit", "lead_ticks": lead, "pickup_beats": (bar - lead) // Q if lead else 0}
    if not lead:
        return piece, info
    notes = [dataclasses.replace(n, start=n.start + lead) for n in piece.notes]
    tempos = [piece.tempos[0]] + [dataclasses.replace(t, tick=t.tick + lead) for t in piece.tempos[1:]]
    return piece.replace(notes=notes, tempos=tempos), info


# ------------------------------------------------------------------------------ the account
def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _counted(families: list[str]) -> list[str]:
    """['piano', 'guitar', 'guitar'] -> ['piano', '2 guitar'] (in first-seen order)."""
    order = list(dict.fromkeys(families))
    return [family if families.count(family) == 1 else f"{families.count(family)} {family}" for family in order]


def _account(details: dict[str, Any], piece: Piece) -> str:
    """The one-line account, e.g. '4 tracks (drums, bass, piano, guitar): drums kept unchanged, bass,
    piano and guitar transferred; tempo map from the file (120 bpm, 4/4)'."""
    tracks = details["tracks"]
    kept = [t["family"] for t in tracks if t["role"] == "kept"]
    moved = [t["family"] for t in tracks if t["role"] == "transferred"]
    if len(tracks) == 1:
        what = f"1 {tracks[0]['family']} track " + ("kept unchanged" if kept else "transferred")
    else:
        what = f"{len(tracks)} tracks ({', '.join(_counted([t['family'] for t in tracks]))}): "
        parts = ([f"{_join(_counted(kept))} kept unchanged"] if kept else []) + [f"{_join(_counted(moved))} transferred"]
        what += ", ".join(parts)
    meters = list(dict.fromkeys(details["time_signatures"]))
    low, high = details["tempo_bpm"]
    if details["timing"] == "estimate":
        b = details["beats"]
        grid = {3: "16ths", 6: "8ths", 12: "quarters", 4: "8th triplets", 2: "16th triplets", 1: "ticks"}[b["grid"]]
        when = (f"expressive timing (grid fit {details['grid_fit']:.2f}): beats estimated (librosa beat tracker, "
                f"{b['bpm']:g} bpm, drift {b['drift']:.0%}"
                + (f", pickup of {b['pickup_beats']} beat{'s' if b['pickup_beats'] > 1 else ''}" if b["pickup_beats"] else "")
                + f", {meters[0]}), quantized to {grid}")
    else:
        tempo = f"{low:g} bpm" if len(piece.tempos) == 1 else f"{len(piece.tempos) - 1} tempo changes, {low:g}-{high:g} bpm"
        origin = "score" if details["timing"] == "score" else "file"
        when = f"tempo map from the {origin} ({tempo}, {' -> '.join(meters)})"
        pickup = details.get("bar_lines", {}).get("pickup_beats", 0)
        if pickup:
            when += f"; opens on a {pickup}-beat pickup, padded with a {details['bar_lines']['lead_ticks'] // Q}-beat rest"
    return f"{what}; {when}"
