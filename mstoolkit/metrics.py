"""Evaluation measures for symbolic style transfer (StyleBench).

Every measure works on :class:`~mstoolkit.piece.Piece` objects (ticks, 12 per quarter note) and
ignores drum notes. :func:`score_pair` bundles them for one (output, target, content, reference)
triplet, :func:`score_transfer` for one transfer outside StyleBench (with or without a ground truth);
:class:`StyleClassifier` gives style accuracy; :func:`nearest_neighbour_agreement` scores how an
embedding separates styles.

    >>> swung = render_style(piece, "swing")  # doctest: +SKIP
    >>> score_pair(output, target=swung, content=piece, reference=other_swung, style="swing")  # doctest: +SKIP
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from mstoolkit.piece import Note, Piece, TICKS_PER_QUARTER

Q = TICKS_PER_QUARTER


def _pitched(piece: Piece) -> list[Note]:
    return [n for n in piece.notes if not n.is_drum]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two non-negative vectors; 1.0 if both are zero, 0.0 if only one is."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a.ravel(), b.ravel()) / (na * nb))


def _bar_positions(piece: Piece, notes: Sequence[Note]) -> tuple[np.ndarray, np.ndarray]:
    """Per note: onset position within its bar as a fraction in [0, 1), and the bar's start tick."""
    starts = np.array(piece.bar_starts(piece.end_tick + 1), dtype=np.int64)
    lengths = np.array([piece.time_signature_at(int(s)).bar_ticks for s in starts], dtype=np.int64)
    onsets = np.array([n.start for n in notes], dtype=np.int64)
    idx = np.clip(np.searchsorted(starts, onsets, side="right") - 1, 0, len(starts) - 1)
    return (onsets - starts[idx]) / lengths[idx], starts[idx]


# --------------------------------------------------------------------------- note matching


class PRF(NamedTuple):
    precision: float
    recall: float
    f1: float


def _match_notes(out: Sequence[Note], ref: Sequence[Note], onset_tolerance: int) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``: ``out[i]`` matched to ``ref[j]`` (same pitch, onsets within the tolerance).

    One-to-one and maximal (bipartite, ``scipy.optimize.linear_sum_assignment`` per pitch,
    preferring the closest onsets). :func:`note_prf` and :func:`error_breakdown` share it.
    """
    from scipy.optimize import linear_sum_assignment

    if onset_tolerance < 0:
        raise ValueError(f"onset_tolerance must be >= 0 ticks, got {onset_tolerance}")
    pairs = []
    for pitch in {n.pitch for n in out} & {n.pitch for n in ref}:
        i_out = [i for i, n in enumerate(out) if n.pitch == pitch]
        i_ref = [j for j, n in enumerate(ref) if n.pitch == pitch]
        a = np.array([out[i].start for i in i_out], dtype=np.float64)
        b = np.array([ref[j].start for j in i_ref], dtype=np.float64)
        distance = np.abs(a[:, None] - b[None, :])  # (n_out, n_ref) onset distances in ticks
        valid = distance <= onset_tolerance
        cost = np.where(valid, distance, 1e6)  # an invalid pair costs more than any set of valid ones
        rows, cols = linear_sum_assignment(cost)
        pairs += [(i_out[r], i_ref[c]) for r, c in zip(rows, cols) if valid[r, c]]
    return sorted(pairs)


def note_prf(output: Piece, target: Piece, onset_tolerance: int = 1) -> PRF:
    """Note precision, recall and F1 of ``output`` against ``target`` (mir_eval-style, onsets only).

    A note matches a target note of the same pitch whose onset is within ``onset_tolerance``
    ticks (default 1 tick = 42 ms at 120 bpm, close to mir_eval's 50 ms); offsets are ignored.
    Matching is one-to-one and maximal (bipartite, ``scipy.optimize.linear_sum_assignment`` per
    pitch, preferring the closest onsets). Two empty pieces score 1.0; one empty piece 0.0.

    >>> note_prf(Piece([Note(0, 12, 60), Note(12, 12, 62)]), Piece([Note(1, 12, 60)]))
    PRF(precision=0.5, recall=1.0, f1=0.6666666666666666)
    """
    if onset_tolerance < 0:
        raise ValueError(f"onset_tolerance must be >= 0 ticks, got {onset_tolerance}")
    out, ref = _pitched(output), _pitched(target)
    if not out or not ref:
        value = 1.0 if not out and not ref else 0.0
        return PRF(value, value, value)
    matched = len(_match_notes(out, ref, onset_tolerance))
    precision, recall = matched / len(out), matched / len(ref)
    f1 = 0.0 if matched == 0 else 2 * precision * recall / (precision + recall)
    return PRF(precision, recall, f1)


# the classes of error_breakdown, in the order its rule tries them
ERROR_KINDS = ("exact", "octave", "wrong_pitch", "timing", "other")


def error_breakdown(output: Piece, target: Piece, onset_tolerance: int = 1) -> dict[str, int]:
    """Where the output's notes went wrong: each pitched output note in exactly one class.

    The first rule that holds names a note's class (drums are ignored, as in :func:`note_prf`):

    * ``exact``: matched to a target note by :func:`note_prf`'s one-to-one matching (same pitch,
      onset within ``onset_tolerance`` ticks);
    * ``octave``: a target note starts at the same onset (within the tolerance) a whole number of
      octaves (not zero) away;
    * ``wrong_pitch``: a target note starts at the same onset: the right beat, the wrong pitch
      (this includes a surplus copy of a matched note: its beat is right, its pitch is taken);
    * ``timing``: a target note of the same pitch starts within one beat (12 ticks);
    * ``other``: none of these (a note the target has nothing like).

    "A target note" is any target note, matched or not. Also returned: ``n_output`` (pitched output
    notes, the sum of the five classes), ``n_target`` and ``missed`` (target notes no output note
    matched, ``n_target - exact``). :func:`error_shares` turns the counts into shares.

    >>> target = Piece([Note(0, 12, 60), Note(12, 12, 64), Note(24, 12, 67)])  # C4, E4, G4 on beats 1-3
    >>> output = Piece([Note(0, 12, 60),   # C4 on beat 1: exact
    ...                 Note(12, 12, 76),  # E5 on beat 2: octave
    ...                 Note(24, 12, 69),  # A4 on beat 3: wrong_pitch
    ...                 Note(30, 6, 67),   # G4 half a beat late: timing
    ...                 Note(48, 12, 71)]) # B4 on beat 5: other
    >>> error_breakdown(output, target)
    {'n_output': 5, 'exact': 1, 'octave': 1, 'wrong_pitch': 1, 'timing': 1, 'other': 1, 'n_target': 3, 'missed': 2}
    """
    out, ref = _pitched(output), _pitched(target)
    counts = dict.fromkeys(("n_output", *ERROR_KINDS, "n_target", "missed"), 0)
    counts["n_output"], counts["n_target"] = len(out), len(ref)
    exact = {i for i, _ in _match_notes(out, ref, onset_tolerance)}
    for i, note in enumerate(out):
        if i in exact:
            kind = "exact"
        else:
            same_onset = [t.pitch for t in ref if abs(t.start - note.start) <= onset_tolerance]
            if any(p != note.pitch and (p - note.pitch) % 12 == 0 for p in same_onset):
                kind = "octave"
            elif same_onset:
                kind = "wrong_pitch"
            elif any(t.pitch == note.pitch and abs(t.start - note.start) <= Q for t in ref):
                kind = "timing"
            else:
                kind = "other"
        counts[kind] += 1
    counts["missed"] = len(ref) - counts["exact"]
    return counts


def error_shares(counts: Mapping[str, float]) -> dict[str, float]:
    """Shares of the :func:`error_breakdown` classes: each class over ``n_output`` (they sum to 1),
    plus ``missed`` over ``n_target``; NaN where the denominator is 0. Sum the counts of many
    pieces first to get the shares of all their notes.

    >>> error_shares({"n_output": 4, "exact": 3, "octave": 0, "wrong_pitch": 1, "timing": 0, "other": 0,
    ...               "n_target": 5, "missed": 2})
    {'exact': 0.75, 'octave': 0.0, 'wrong_pitch': 0.25, 'timing': 0.0, 'other': 0.0, 'missed': 0.4}
    """
    def share(part: float, whole: float) -> float:
        return part / whole if whole else math.nan

    shares = {kind: share(counts[kind], counts["n_output"]) for kind in ERROR_KINDS}
    shares["missed"] = share(counts["missed"], counts["n_target"])
    return shares


# --------------------------------------------------------------------------- chroma measures


def chroma(piece: Piece, step: int = 3, n_frames: int | None = None) -> np.ndarray:
    """Chroma of the sounding notes per ``step``-tick frame, duration-weighted: ``(12, frames)``.

    Entry ``[pc, f]`` is the number of ticks of frame ``f`` during which notes of pitch class
    ``pc`` sound (a triad held through a frame gives three entries of ``step``).
    """
    if step < 1:
        raise ValueError(f"step must be >= 1 tick, got {step}")
    notes = _pitched(piece)
    n_frames = n_frames if n_frames is not None else -(-piece.end_tick // step)
    roll = np.zeros((12, n_frames * step))  # (12, ticks)
    for n in notes:
        roll[n.pitch % 12, n.start : min(n.end, n_frames * step)] += 1.0
    return roll.reshape(12, n_frames, step).sum(axis=2)  # (12, frames)


def _cosine_cost(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(frames_x, frames_y) cosine distances; 0 between two silent frames, 1 silent vs sounding."""
    nx, ny = np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0)
    sim = (x / np.where(nx > 0, nx, 1.0)).T @ (y / np.where(ny > 0, ny, 1.0))
    sim = np.where((nx[:, None] == 0) & (ny[None, :] == 0), 1.0, sim)
    return np.clip(1.0 - sim, 0.0, 1.0)


def chroma_dtw_similarity(a: Piece, b: Piece, step: int = 3) -> float:
    """Similarity in [0, 1] of two pieces' chroma sequences after dynamic time warping.

    Chroma per ``step``-tick frame (default a sixteenth) from the symbolic notes; cost = cosine
    distance; DTW by ``librosa.sequence.dtw``; similarity = 1 - mean cost along the optimal path.
    1.0 for identical pieces (the seed's "DTW style similarity").

    >>> chroma_dtw_similarity(Piece([Note(0, 12, 60)]), Piece([Note(0, 24, 72)]))
    1.0
    """
    import librosa

    x, y = chroma(a, step), chroma(b, step)
    if x.shape[1] == 0 or y.shape[1] == 0:
        return 1.0 if x.shape[1] == y.shape[1] else 0.0
    cost = _cosine_cost(x, y)
    _, path = librosa.sequence.dtw(C=cost)  # path: (L, 2) index pairs, end to start
    return float(1.0 - cost[path[:, 0], path[:, 1]].mean())


def content_similarity(output: Piece, content: Piece, step: int = Q) -> float:
    """Content preservation: mean frame-wise chroma cosine between output and content.

    Groove2Groove's measure (Cífka et al. 2020): chroma per beat (``step`` = 12 ticks) of both
    pieces, cosine per frame, averaged over the frames where at least one of them sounds (a frame
    where only one sounds scores 0). No time warping: the output must keep the content's timing.

    >>> content_similarity(Piece([Note(0, 12, 60)]), Piece([Note(0, 12, 60), Note(12, 12, 67)]))
    0.5
    """
    n = -(-max(output.end_tick, content.end_tick) // step)
    x, y = chroma(output, step, n), chroma(content, step, n)
    sounding = (x.sum(0) > 0) | (y.sum(0) > 0)
    if not sounding.any():
        return 1.0
    x, y = x[:, sounding], y[:, sounding]  # (12, F) each
    nx, ny = np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0)
    cosine = (x * y).sum(0) / np.where(nx * ny > 0, nx * ny, 1.0)  # (F,), 0 where one frame is silent
    return float(cosine.mean())


# --------------------------------------------------------------------------- style profiles

POSITION_BINS = 48  # onset position within the bar (1 tick per bin in 4/4)
PROFILE_POSITION_BINS = 24  # coarser position axis of the 2-D profiles (2 ticks per bin in 4/4)
DURATION_BINS = 21  # round(3 * log2(duration in ticks)), so 1, 2, 3, 4, 6, 8, 12, 24, 48 are apart
VELOCITY_BINS = 8


def _duration_bin(durations: np.ndarray) -> np.ndarray:
    return np.clip(np.round(3 * np.log2(np.maximum(durations, 1))), 0, DURATION_BINS - 1).astype(int)


def style_profiles(piece: Piece) -> dict[str, np.ndarray]:
    """Groove2Groove-style profiles (note counts; Cífka et al. 2020, Sec. 5):

    * ``onset_position``: onsets by position within the bar, ``(48,)``;
    * ``onset_duration``: onset position x log-duration, ``(24, 21)``;
    * ``onset_velocity``: onset position x velocity, ``(24, 8)``.
    """
    notes = _pitched(piece)
    profiles = {
        "onset_position": np.zeros(POSITION_BINS),
        "onset_duration": np.zeros((PROFILE_POSITION_BINS, DURATION_BINS)),
        "onset_velocity": np.zeros((PROFILE_POSITION_BINS, VELOCITY_BINS)),
    }
    if not notes:
        return profiles
    frac, _ = _bar_positions(piece, notes)
    pos = np.minimum((frac * POSITION_BINS).astype(int), POSITION_BINS - 1)
    pos2 = np.minimum((frac * PROFILE_POSITION_BINS).astype(int), PROFILE_POSITION_BINS - 1)
    dur = _duration_bin(np.array([n.duration for n in notes]))
    vel = np.minimum(np.array([n.velocity for n in notes]) * VELOCITY_BINS // 128, VELOCITY_BINS - 1)
    np.add.at(profiles["onset_position"], pos, 1.0)
    np.add.at(profiles["onset_duration"], (pos2, dur), 1.0)
    np.add.at(profiles["onset_velocity"], (pos2, vel), 1.0)
    return profiles


def style_profile_similarity(output: Piece, reference: Piece) -> dict[str, float]:
    """Cosine similarity of each style profile (:func:`style_profiles`) and their ``mean``.

    The reference is a *different* piece in the wanted style, so the profiles compare rhythm,
    articulation and dynamics, not notes.

    >>> style_profile_similarity(Piece([Note(0, 6, 60)]), Piece([Note(0, 6, 67)]))["mean"]
    1.0
    """
    a, b = style_profiles(output), style_profiles(reference)
    result = {name: _cosine(a[name], b[name]) for name in a}
    result["mean"] = float(np.mean(list(result.values())))
    return result


# --------------------------------------------------------------------------- swing


def swing_ratio(piece: Piece) -> float | None:
    """Swing ratio estimated from onsets: long / short part of eighth-note pairs.

    Evidence = every quarter note (counted from its bar line) whose distinct onsets are exactly
    the quarter's start and one more onset at position ``p`` with 3 <= p <= 9 ticks (an eighth
    pair, straight or swung; beats with sixteenths, triplets or a single onset say nothing).
    Ratio = mean(p) / (12 - mean(p)): 1.0 straight, 2.0 triplet swing, 3.0 dotted shuffle.
    ``None`` when no quarter gives evidence.

    >>> swing_ratio(Piece([Note(0, 8, 60), Note(8, 4, 62)]))
    2.0
    """
    notes = _pitched(piece)
    if not notes:
        return None
    _, bar_start = _bar_positions(piece, notes)
    onsets = np.array([n.start for n in notes])
    rel = onsets - bar_start
    positions: dict[tuple[int, int], set[int]] = {}  # (bar start, quarter in bar) -> onset positions
    for b, q, r in zip(bar_start.tolist(), (rel // Q).tolist(), (rel % Q).tolist()):
        positions.setdefault((b, q), set()).add(r)
    evidence = [max(s) for s in positions.values() if len(s) == 2 and 0 in s and 3 <= max(s) <= 9]
    if not evidence:
        return None
    p = float(np.mean(evidence))
    return p / (Q - p)


# --------------------------------------------------------------------------- MusPy descriptors


def _roll(piece: Piece) -> np.ndarray:
    """Binary piano roll ``(ticks, 128)`` of the pitched notes."""
    roll = np.zeros((piece.end_tick, 128), dtype=bool)
    for n in _pitched(piece):
        roll[n.start : n.end, n.pitch] = True
    return roll


def pitch_class_entropy(piece: Piece) -> float:
    """Shannon entropy (bits) of the normalized pitch-class histogram of the notes; NaN if none.

    MusPy's ``pitch_class_entropy`` (Wu & Yang 2020, "The Jazz Transformer on the Front Line").
    """
    counts = np.bincount([n.pitch % 12 for n in _pitched(piece)], minlength=12).astype(float)
    if counts.sum() == 0:
        return math.nan
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def groove_consistency(piece: Piece) -> float:
    """1 - mean Hamming distance between the binary onset vectors of neighbouring bars.

    MusPy's ``groove_consistency`` (Wu & Yang 2020) with one position per tick and the distance
    normalized by the bar length; bars are taken from the piece's time signatures (neighbours of
    different lengths are compared over the longer one). NaN for fewer than two bars.
    """
    notes = _pitched(piece)
    starts = piece.bar_starts()
    if len(starts) < 2 or not notes:
        return math.nan
    lengths = [piece.time_signature_at(s).bar_ticks for s in starts]
    width = max(lengths)
    grooves = np.zeros((len(starts), width), dtype=bool)  # (bars, ticks)
    _, bar_start = _bar_positions(piece, notes)
    index = {s: i for i, s in enumerate(starts)}
    for n, b in zip(notes, bar_start.tolist()):
        if b in index:
            grooves[index[b], n.start - b] = True
    distances = [
        np.count_nonzero(grooves[i] != grooves[i + 1]) / max(lengths[i], lengths[i + 1])
        for i in range(len(starts) - 1)
    ]
    return float(1.0 - np.mean(distances))


def empty_beat_rate(piece: Piece) -> float:
    """Fraction of quarter-note beats in which no note sounds (MusPy's ``empty_beat_rate``,
    after Pypianoroll; Dong et al. 2018). A note sounds in beat [b, b + 12) when it overlaps it.
    NaN for an empty piece."""
    roll = _roll(piece)
    if len(roll) == 0:
        return math.nan
    n_beats = -(-len(roll) // Q)
    sounding = np.zeros(n_beats * Q, dtype=bool)
    sounding[: len(roll)] = roll.any(axis=1)
    return float(1.0 - sounding.reshape(n_beats, Q).any(axis=1).mean())


def polyphony(piece: Piece) -> float:
    """Mean number of pitches sounding, over the ticks where at least one sounds (MusPy's
    ``polyphony``). NaN for an empty piece."""
    counts = _roll(piece).sum(axis=1)
    on = counts > 0
    return float(counts[on].mean()) if on.any() else math.nan


def descriptors(piece: Piece) -> dict[str, float]:
    """The MusPy-style descriptors of one piece, by name."""
    return {
        "pitch_class_entropy": pitch_class_entropy(piece),
        "groove_consistency": groove_consistency(piece),
        "empty_beat_rate": empty_beat_rate(piece),
        "polyphony": polyphony(piece),
    }


# --------------------------------------------------------------------------- style classifier

FEATURE_VERSION = 1


def style_features(piece: Piece, use_programs: bool = False) -> np.ndarray:
    """Fixed-length description of a piece's texture, rhythm and dynamics (not its notes).

    Blocks: onset position in the bar (48 bins) and within the quarter (12 bins, distinct
    onsets); log-duration histogram (21); velocity mean, spread and accent (mean velocity on
    half-note positions minus elsewhere) (3); polyphony, notes per onset and sounding fraction
    (3); mean pitch of the notes starting at each of 16 positions in the bar relative to the
    piece's mean pitch (16); with ``use_programs``, the share of notes per GM program (128).
    """
    notes = _pitched(piece)
    size = POSITION_BINS + Q + DURATION_BINS + 3 + 3 + 16 + (128 if use_programs else 0)
    if not notes:
        return np.zeros(size)
    frac, bar_start = _bar_positions(piece, notes)
    onsets = np.array([n.start for n in notes])
    pitches = np.array([n.pitch for n in notes], dtype=float)
    velocities = np.array([n.velocity for n in notes], dtype=float)
    position = np.bincount(np.minimum((frac * POSITION_BINS).astype(int), POSITION_BINS - 1),
                           minlength=POSITION_BINS) / len(notes)
    distinct = np.unique(np.stack([onsets, onsets - bar_start]), axis=1)[1]  # positions of distinct onsets
    in_quarter = np.bincount(distinct % Q, minlength=Q) / distinct.size
    durations = np.bincount(_duration_bin(np.array([n.duration for n in notes])), minlength=DURATION_BINS) / len(notes)
    strong = (onsets - bar_start) % (2 * Q) == 0
    accent = velocities[strong].mean() - velocities[~strong].mean() if strong.any() and (~strong).any() else 0.0
    dynamics = [velocities.mean() / 127, velocities.std() / 32, accent / 32]
    roll_on = _roll(piece).sum(axis=1)
    texture = [
        (roll_on[roll_on > 0].mean() if (roll_on > 0).any() else 0.0) / 4,
        len(notes) / np.unique(onsets).size / 4,
        float((roll_on > 0).mean()),
    ]
    slot = np.minimum((frac * 16).astype(int), 15)
    register = np.zeros(16)
    for k in range(16):
        if (slot == k).any():
            register[k] = (pitches[slot == k].mean() - pitches.mean()) / 12
    blocks = [position, in_quarter, durations, dynamics, texture, register]
    if use_programs:
        blocks.append(np.bincount([n.program for n in notes], minlength=128) / len(notes))
    return np.concatenate([np.asarray(b, dtype=float) for b in blocks])


@dataclass
class StyleClassifier:
    """Multinomial logistic regression over :func:`style_features` (standardized).

    Stored as plain arrays so that it saves to JSON and predicts with numpy only.

    >>> clf = train_style_classifier([(piece_a, "swing"), (piece_b, "waltz")])  # doctest: +SKIP
    >>> clf.predict([piece_c]), clf.accuracy([(piece_d, "waltz")])  # doctest: +SKIP
    """

    classes: list[str]
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    coef: np.ndarray  # (C, F), or (1, F) for two classes
    intercept: np.ndarray  # (C,) or (1,)
    use_programs: bool = False

    def decision(self, pieces: Sequence[Piece]) -> np.ndarray:
        """Class scores ``(N, C)`` (larger = more likely)."""
        x = np.stack([style_features(p, self.use_programs) for p in pieces])  # (N, F)
        z = (x - self.mean) / self.scale @ self.coef.T + self.intercept  # (N, C) or (N, 1)
        return np.concatenate([-z, z], axis=1) if z.shape[1] == 1 else z

    def predict(self, pieces: Sequence[Piece]) -> list[str]:
        """The most likely style of each piece."""
        if not pieces:
            return []
        return [self.classes[i] for i in self.decision(pieces).argmax(axis=1)]

    def accuracy(self, pairs: Sequence[tuple[Piece, str]]) -> float:
        """Fraction of ``(piece, style)`` pairs predicted right."""
        if not pairs:
            raise ValueError("accuracy: pairs is empty")
        predicted = self.predict([p for p, _ in pairs])
        return float(np.mean([a == s for a, (_, s) in zip(predicted, pairs)]))

    def save(self, path: str | Path) -> None:
        """Write the classifier as JSON (no pickle)."""
        data = {
            "feature_version": FEATURE_VERSION,
            "classes": self.classes,
            "use_programs": self.use_programs,
            **{k: getattr(self, k).tolist() for k in ("mean", "scale", "coef", "intercept")},
        }
        Path(path).write_text(json.dumps(data))

    @classmethod
    def load(cls, path: str | Path) -> "StyleClassifier":
        """Read a classifier written by :meth:`save`; raises ValueError naming the file if it is not one."""
        try:
            data = json.loads(Path(path).read_text())
            if data["feature_version"] != FEATURE_VERSION:
                raise ValueError(f"feature version {data['feature_version']}, expected {FEATURE_VERSION}")
            return cls(
                classes=list(data["classes"]),
                use_programs=bool(data["use_programs"]),
                **{k: np.asarray(data[k], dtype=float) for k in ("mean", "scale", "coef", "intercept")},
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: not a style classifier file ({e})") from None


def train_style_classifier(pairs: Sequence[tuple[Piece, str]], use_programs: bool = False,
                           c: float = 1.0) -> StyleClassifier:
    """Fit a :class:`StyleClassifier` on ``(piece, style name)`` pairs (scikit-learn, L2, ``C=c``).

        >>> clf = train_style_classifier([(render_style(p, s), s) for p in pieces for s in styles])  # doctest: +SKIP

    By default the classifier ignores programs (timbre), so it judges the idiom itself; pass
    ``use_programs=True`` to also use the General-MIDI program shares.
    """
    from sklearn.linear_model import LogisticRegression

    labels = sorted({s for _, s in pairs})
    if len(labels) < 2:
        raise ValueError(f"train_style_classifier: need at least two styles in pairs, got {labels}")
    x = np.stack([style_features(p, use_programs) for p, _ in pairs])  # (N, F)
    y = np.array([labels.index(s) for _, s in pairs])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    model = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    return StyleClassifier(labels, mean, scale, model.coef_, model.intercept_, use_programs)


# --------------------------------------------------------------------------- one triplet


def score_pair(output: Piece, target: Piece, content: Piece, reference: Piece, *, style: str | None = None,
               classifier: StyleClassifier | None = None, onset_tolerance: int = 1) -> dict[str, float | None]:
    """Every per-triplet measure of one model output, as a flat dict.

    ``target`` = the content rendered in the wanted style, ``reference`` = another piece in that
    style, ``style`` = its name (enables the swing-ratio error for swing styles and, with a
    ``classifier``, ``style_correct``). Keys: ``note_precision``, ``note_recall``, ``note_f1``,
    ``dtw_similarity`` (output vs target), ``content_similarity`` (output vs content),
    ``style_profile_similarity`` (mean, output vs reference) and its parts
    ``style_profile_onset_position`` / ``_onset_duration`` / ``_onset_velocity``,
    ``swing_ratio_error`` (|ratio(output) - ratio(target)|, an output without eighth pairs
    counting as straight; None unless the style swings), ``style_correct`` (1.0 / 0.0, None
    without a classifier), the output's MusPy descriptors and the :func:`error_breakdown` counts
    as ``notes_output``, ``notes_exact``, ``notes_octave``, ``notes_wrong_pitch``, ``notes_timing``,
    ``notes_other``, ``notes_target`` and ``notes_missed`` (counts, so that a benchmark can sum
    them over pieces before it divides).
    """
    from mstoolkit.styles import get_style

    prf = note_prf(output, target, onset_tolerance)
    profile = style_profile_similarity(output, reference)
    swung = get_style(style).swing if style is not None else (swing_ratio(target) or 1.0) > 1.25
    swing_error = None
    if swung:
        target_ratio = swing_ratio(target)
        if target_ratio is not None:
            swing_error = abs((swing_ratio(output) or 1.0) - target_ratio)
    style_correct = None
    if classifier is not None and style is not None:
        style_correct = float(classifier.predict([output])[0] == style)
    return {
        "note_precision": prf.precision,
        "note_recall": prf.recall,
        "note_f1": prf.f1,
        "dtw_similarity": chroma_dtw_similarity(output, target),
        "content_similarity": content_similarity(output, content),
        "style_profile_similarity": profile["mean"],
        **{f"style_profile_{k}": v for k, v in profile.items() if k != "mean"},
        "swing_ratio_error": swing_error,
        "style_correct": style_correct,
        **descriptors(output),
        **{f"notes_{k.removeprefix('n_')}": v for k, v in error_breakdown(output, target, onset_tolerance).items()},
    }


def score_transfer(output: Piece, content: Piece, reference: Any, *, style: str | None = None,
                   target: Piece | None = None, classifier: StyleClassifier | None = None) -> dict[str, Any]:
    """The scores of one transfer made outside a StyleBench build (the Transfer Studio, the notebooks).

    With a ground truth ``target`` (for a named ``style``: the content rendered by the style's rule),
    every :func:`score_pair` measure. Without one (an uploaded reference has none): what needs no
    target, ``content_similarity`` and the :func:`descriptors`, plus ``style_profile_similarity`` when
    ``reference`` is a Piece (an audio reference has no notes to profile). With a ``classifier`` and
    an output that has notes: ``predicted_style`` ("which style does it sound like?") and, for a named
    ``style``, ``style_correct``.

        >>> from mstoolkit.styles import render_style
        >>> content = Piece([Note(12 * i, 6, 60 + i % 5) for i in range(16)])
        >>> scores = score_transfer(content, content, render_style(content, "swing"))   # no target
        >>> scores["content_similarity"], "note_f1" in scores
        (1.0, False)
        >>> target = render_style(content, "swing")
        >>> score_transfer(target, content, target, style="swing", target=target)["note_f1"]
        1.0
    """
    if target is not None:
        scores: dict[str, Any] = score_pair(output, target, content, reference, style=style)
    else:
        scores = {"content_similarity": content_similarity(output, content), **descriptors(output)}
        if isinstance(reference, Piece):
            scores["style_profile_similarity"] = style_profile_similarity(output, reference)["mean"]
    if classifier is not None and len(output):
        scores["predicted_style"] = classifier.predict([output])[0]
        if style is not None:
            scores["style_correct"] = float(scores["predicted_style"] == style)
    return scores


# ----------------------------------------------------------------------------- embeddings
def nearest_neighbour_agreement(embeddings: np.ndarray, labels: Sequence[str]) -> float:
    """Fraction of points whose nearest other point (Euclidean) has the same label: how well an
    embedding (style vectors, Gram matrices) separates the styles, without training anything.

        >>> nearest_neighbour_agreement(np.array([[0.0], [0.1], [5.0], [5.1]]), ["a", "a", "b", "b"])
        1.0
        >>> nearest_neighbour_agreement(np.array([[0.0], [0.1], [5.0], [5.1]]), ["a", "b", "a", "b"])
        0.0
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(labels) or len(x) < 2:
        raise ValueError(f"nearest_neighbour_agreement: expected (N >= 2, D) embeddings and N labels, got "
                         f"{x.shape} and {len(labels)}")
    dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)  # (N, N)
    np.fill_diagonal(dist, np.inf)
    nearest = dist.argmin(axis=1)
    return float(np.mean([labels[i] == labels[j] for i, j in enumerate(nearest)]))
