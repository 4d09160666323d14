"""REMI tokenizer: `Piece` <-> token ids, token names for display, and the token grammar.

    >>> tok = RemiTokenizer()
    >>> tok.tokens(tok.encode(Piece([Note(start=0, duration=12, pitch=60, velocity=80)])))
    ['BOS', 'Bar', 'TimeSig_4/4', 'Position_0', 'Tempo_120.0', 'Program_0', 'Pitch_60', 'Velocity_80', 'Duration_12', 'EOS']

**Vocabulary** (ids in this order): ``PAD=0``, ``BOS=1``, ``EOS=2``, ``Bar``, ``TimeSig_n/d``,
``Tempo_bpm``, ``Position_p`` (tick inside the bar, 0 .. longest bar - 1), ``Program_0..127`` and
``Program_drums``, ``Pitch_p``, ``Velocity_v`` (bin centres), ``Duration_d`` (ticks, 1 .. max).
One position is one grid tick: 12 per quarter note.

**Sequence**::

    BOS
    Bar TimeSig Position_0 Tempo          first bar: time signature and tempo are always stated
      [Position_p [Tempo] (Program Pitch Velocity Duration)*]*   events of the bar, by position
    Bar [TimeSig]                         TimeSig only when it changes; empty bars are bare Bar tokens
      ...
    EOS

Within a position the tempo comes first, then the notes ordered by (program, pitch, duration,
velocity). Bars are emitted up to the last note onset, tempo change and time-signature change.

**Quantization rules** (what :meth:`RemiTokenizer.quantize` does; ``decode(encode(p))`` equals
``quantize(p)`` in notes, tempi and time signatures, and ``quantize(p) == p`` for a piece on the grid):

- velocity -> the nearest bin centre (ties to the lower one); the default centres are 4, 8, ..., 124
  and 127 (32 bins), so 64, 80 and 100 are exact;
- tempo -> the nearest bin on a log scale; the default bins are ``120 * 2**(k/12)`` bpm rounded to
  0.01 (a semitone-like 6 % step, so 30, 60, 120 and 240 are exact), from 25.23 to 240 bpm;
  several tempo changes on one tick: the last in ``piece.tempos`` wins; a change to the tempo already
  in force is dropped; the first tempo applies from tick 0 (as in :meth:`Piece.tempo_at`);
- duration -> clipped to ``max_duration`` ticks (default 192 = four 4/4 bars);
- pitch outside ``pitch_range`` -> moved by octaves into the range (drum notes outside it are dropped);
- drum notes -> ``Program_drums``; their ``program`` field comes back as 0;
- time signatures take effect at the next bar line at or after their tick (the rule of
  :meth:`Piece.bar_starts`); a signature that is not in the supported set is replaced by a supported
  one with the same bar length (18/8 -> 9/4), else :class:`ValueError`; repeats are dropped.

**Grammar**: :attr:`RemiTokenizer.grammar` is a DFA over token ids (see :class:`Grammar`). It tracks
the current bar length, so ``Position`` tokens are always inside the bar; positions need not
increase inside a bar (decode sorts the notes; two tempi on one tick: the later token wins).
:meth:`RemiTokenizer.decode` runs the DFA first, so every accepted sequence decodes and every other
one raises :class:`ValueError` naming the index and the token.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mstoolkit.config import UserError, from_dict
from mstoolkit.piece import TICKS_PER_QUARTER, Note, Piece, TempoChange, TimeSignature

PAD, BOS, EOS = 0, 1, 2
DRUMS = 128  # program value used for drum notes in Program tokens

# Token type codes, in vocabulary order.
_TYPES = ("PAD", "BOS", "EOS", "Bar", "TimeSig", "Tempo", "Position", "Program", "Pitch", "Velocity", "Duration")
_T = {name: code for code, name in enumerate(_TYPES)}


def geometric_tempos(low: float = 24.0, high: float = 240.0, steps_per_octave: int = 12,
                     anchor: float = 120.0) -> tuple[float, ...]:
    """Tempo bins ``anchor * 2**(k / steps_per_octave)`` (rounded to 0.01) inside ``[low, high]``.

    >>> geometric_tempos(60, 240, 1)
    (60.0, 120.0, 240.0)
    """
    k_low = math.ceil(steps_per_octave * math.log2(low / anchor) - 1e-9)
    k_high = math.floor(steps_per_octave * math.log2(high / anchor) + 1e-9)
    return tuple(round(anchor * 2 ** (k / steps_per_octave), 2) for k in range(k_low, k_high + 1))


def bar_ticks(numerator: int, denominator: int) -> Fraction:
    """Length of a bar in grid ticks (a Fraction, so off-grid signatures can be detected)."""
    return Fraction(numerator * 4 * TICKS_PER_QUARTER, denominator)


def _default_time_signatures() -> tuple[tuple[int, int], ...]:
    """Numerators 1-16 over 1, 2, 4, 8, 16, whose bar is at most 192 ticks (four 4/4 bars)."""
    return tuple((n, d) for d in (1, 2, 4, 8, 16) for n in range(1, 17) if bar_ticks(n, d) <= 192)


@dataclass(frozen=True)
class TokenizerConfig:
    """Everything that fixes the vocabulary; JSON round trip and ``==`` included.

    >>> TokenizerConfig.from_json(TokenizerConfig().to_json()) == TokenizerConfig()
    True
    """

    pitch_range: tuple[int, int] = (0, 127)  # inclusive
    velocities: tuple[int, ...] = tuple(range(4, 128, 4)) + (127,)  # bin centres
    max_duration: int = 192  # ticks; longer notes are clipped
    tempos: tuple[float, ...] = geometric_tempos()  # bpm bins
    time_signatures: tuple[tuple[int, int], ...] = field(default_factory=_default_time_signatures)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("pitch_range", tuple(int(p) for p in self.pitch_range))
        set_("velocities", tuple(int(v) for v in self.velocities))
        set_("tempos", tuple(float(t) for t in self.tempos))
        set_("time_signatures", tuple((int(n), int(d)) for n, d in self.time_signatures))
        low, high = self.pitch_range
        if not (len(self.pitch_range) == 2 and 0 <= low and high <= 127 and high - low >= 11):
            raise UserError(f"pitch_range {self.pitch_range} must lie in 0-127 and span at least an octave")
        if not self.velocities or list(self.velocities) != sorted(set(self.velocities)) \
                or not 1 <= self.velocities[0] <= self.velocities[-1] <= 127:
            raise UserError(f"velocities {self.velocities} must be increasing values in 1-127")
        if self.max_duration < 1:
            raise UserError(f"max_duration {self.max_duration} must be >= 1 tick")
        if not self.tempos or list(self.tempos) != sorted(set(self.tempos)) or self.tempos[0] <= 0:
            raise UserError(f"tempos {self.tempos} must be increasing positive bpm values")
        if not self.time_signatures or len(set(self.time_signatures)) != len(self.time_signatures):
            raise UserError("time_signatures must be a non-empty list of distinct (numerator, denominator)")
        for n, d in self.time_signatures:
            if n < 1 or d not in (1, 2, 4, 8, 16, 32) or bar_ticks(n, d).denominator != 1:
                raise UserError(f"time signature {n}/{d}: its bar is not a whole number of grid ticks")

    @property
    def positions_per_quarter(self) -> int:
        """Fixed by the grid of :mod:`mstoolkit.piece`: 12."""
        return TICKS_PER_QUARTER

    @property
    def max_bar_ticks(self) -> int:
        """The longest supported bar, in ticks (Position tokens run 0 .. this - 1)."""
        return int(max(bar_ticks(n, d) for n, d in self.time_signatures))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _as_lists(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TokenizerConfig":
        """Inverse of :meth:`to_dict`; an unknown key raises UserError naming it (:func:`mstoolkit.config.from_dict`)."""
        return from_dict(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "TokenizerConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"TokenizerConfig.from_json: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise UserError("TokenizerConfig.from_json: expected a JSON object")
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "TokenizerConfig":
        return cls.from_json(Path(path).read_text())


def _as_lists(value: Any) -> Any:
    return [_as_lists(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True, eq=False)
class Grammar:
    """The token grammar as a deterministic finite automaton over token ids (plain numpy arrays).

    ``next_state[s, v]`` is the state after token ``v`` in state ``s``, or -1 where ``v`` is not
    allowed. A batched torch sampler does ``mask = next_state[state] >= 0`` on its device.
    ``start_state`` is the state after BOS; after EOS the automaton only allows PAD, so finished
    rows of a batch are forced to pad. ``accepting[s]``: the sequence may end in ``s``.

    States of the REMI grammar: start, after the first Bar, end, and for every supported bar
    length one state per kind of the last token (first TimeSig, first Position, Bar, TimeSig,
    Position, Tempo, Program, Pitch, Velocity, Duration): 323 states for the default config.

    >>> g = RemiTokenizer().grammar
    >>> g.accepts(RemiTokenizer().encode(Piece()))
    True
    """

    next_state: np.ndarray  # (n_states, vocab_size) int32
    start_state: int
    accepting: np.ndarray  # (n_states,) bool
    token_names: tuple[str, ...]  # (vocab_size,) for error messages
    state_names: tuple[str, ...]  # (n_states,)
    bos_id: int = BOS
    _rows: list = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rows", self.next_state.tolist())  # fast Python-side walking

    @property
    def n_states(self) -> int:
        return self.next_state.shape[0]

    def allowed(self, state: int) -> np.ndarray:
        """Boolean mask ``(vocab_size,)`` of the tokens allowed in ``state``."""
        return self.next_state[state] >= 0

    def state_after(self, ids: Iterable[int]) -> int:
        """The state after ``ids`` (a leading BOS is skipped), or -1 if the grammar rejects them."""
        try:
            return self._walk(ids)
        except ValueError:
            return -1

    def accepts(self, ids: Iterable[int]) -> bool:
        """True if ``ids`` is a complete sequence: every token allowed, ending in an accepting state."""
        state = self.state_after(ids)
        return state >= 0 and bool(self.accepting[state])

    def check(self, ids: Iterable[int]) -> int:
        """Raise ValueError naming the first offending index and token unless ``accepts(ids)``."""
        state = self._walk(ids)
        if not self.accepting[state]:
            raise ValueError(f"token sequence ends in state '{self.state_names[state]}', in the middle of an "
                             f"event: expected {self._expected(state)}")
        return state

    def _walk(self, ids: Iterable[int]) -> int:
        ids = _id_list(ids)
        rows, vocab = self._rows, len(self.token_names)
        state, first = self.start_state, 1 if ids[:1] == [self.bos_id] else 0
        for index in range(first, len(ids)):
            token = ids[index]
            if type(token) is not int or not 0 <= token < vocab:
                token = ids[index] = _as_id(token, index, vocab)
            following = rows[state][token]
            if following < 0:
                raise ValueError(f"token {token} ('{self.token_names[token]}') at index {index} is not allowed "
                                 f"in state '{self.state_names[state]}': expected {self._expected(state)}")
            state = following
        return state

    def _expected(self, state: int) -> str:
        names = [self.token_names[v].split("_")[0] for v in np.flatnonzero(self.allowed(state))]
        return ", ".join(dict.fromkeys(names)) or "nothing"


def _id_list(ids: Iterable[int]) -> list:
    """Token ids as a Python list (from lists, numpy arrays and CPU torch tensors); checked by :func:`_as_id`."""
    return ids.tolist() if hasattr(ids, "tolist") else list(ids)


def _as_id(token: Any, index: int, vocab_size: int) -> int:
    """``token`` as an int id in ``0..vocab_size - 1``, or ValueError naming the index (the slow path)."""
    if isinstance(token, list):
        raise ValueError("token ids must be a flat sequence, got a nested one (decode one row at a time)")
    if isinstance(token, (int, np.integer)) and not isinstance(token, bool) and 0 <= token < vocab_size:
        return int(token)
    raise ValueError(f"token id {token!r} at index {index} is not an id in 0..{vocab_size - 1}")


class RemiTokenizer:
    """REMI tokens for :class:`Piece`: encode, decode, names, grammar, JSON save/load.

    >>> tok = RemiTokenizer()
    >>> piece = Piece([Note(0, 12, 60, 80), Note(12, 24, 64, 100, program=40)])
    >>> tok.decode(tok.encode(piece)).notes == piece.notes
    True
    """

    pad_id, bos_id, eos_id = PAD, BOS, EOS

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        self.config = config = config or TokenizerConfig()
        low, high = config.pitch_range
        self._ts = list(config.time_signatures)
        self._ts_ticks = np.array([int(bar_ticks(n, d)) for n, d in self._ts], dtype=np.int64)
        self._max_bar = config.max_bar_ticks
        groups = [  # (type, value per token, display name per token)
            ("PAD", [0], ["PAD"]), ("BOS", [0], ["BOS"]), ("EOS", [0], ["EOS"]), ("Bar", [0], ["Bar"]),
            ("TimeSig", range(len(self._ts)), [f"TimeSig_{n}/{d}" for n, d in self._ts]),
            ("Tempo", range(len(config.tempos)), [f"Tempo_{t}" for t in config.tempos]),
            ("Position", range(config.max_bar_ticks), [f"Position_{p}" for p in range(config.max_bar_ticks)]),
            ("Program", range(129), [f"Program_{p}" for p in range(128)] + ["Program_drums"]),
            ("Pitch", range(low, high + 1), [f"Pitch_{p}" for p in range(low, high + 1)]),
            ("Velocity", config.velocities, [f"Velocity_{v}" for v in config.velocities]),
            ("Duration", range(1, config.max_duration + 1),
             [f"Duration_{d}" for d in range(1, config.max_duration + 1)]),
        ]
        self._offset: dict[str, int] = {}  # first id of each token type
        self._count: dict[str, int] = {}  # number of ids of each token type
        names: list[str] = []
        types: list[str] = []
        values: list[int] = []
        for type_name, type_values, type_names in groups:
            self._offset[type_name], self._count[type_name] = len(names), len(type_names)
            names += type_names
            types += [type_name] * len(type_names)
            values += list(type_values)
        self._names = names
        self.token_types: list[str] = types  # type name per id, e.g. "Pitch"
        self.vocab: dict[str, int] = {name: i for i, name in enumerate(names)}
        self._type_code = np.array([_T[t] for t in types], dtype=np.int64)  # (V,)
        self._value = np.array(values, dtype=np.int64)  # (V,) tick / program / pitch / velocity / index
        # Quantization tables.
        centres = np.array(config.velocities)
        self._velocity_bin = np.abs(np.arange(128)[:, None] - centres[None, :]).argmin(axis=1)  # (128,)
        log_tempos = np.log(np.array(config.tempos))
        self._tempo_edges = (log_tempos[1:] + log_tempos[:-1]) / 2  # (n_tempos - 1,) log-scale midpoints

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return len(self._names)

    @property
    def bar_ids(self) -> tuple[int, ...]:
        """The ids of the tokens that start a bar (what a sampler counts bars by, ``Decoder(bar_ids=...)``).

            >>> RemiTokenizer().bar_ids
            (3,)
        """
        first = self._offset["Bar"]
        return tuple(range(first, first + self._count["Bar"]))

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """Token names for ids, e.g. ``['BOS', 'Bar', 'TimeSig_4/4', ...]``."""
        names, vocab = self._names, len(self._names)
        return [names[t if type(t) is int and 0 <= t < vocab else _as_id(t, i, vocab)]
                for i, t in enumerate(_id_list(ids))]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemiTokenizer) and other.config == self.config

    def __hash__(self) -> int:
        return hash(self.config)

    def __repr__(self) -> str:
        return f"RemiTokenizer(vocab_size={self.vocab_size})"

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON (its config; the vocabulary follows from it)."""
        data = {"tokenizer": "mstoolkit.RemiTokenizer", "version": 1, "config": self.config.to_dict()}
        Path(path).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "RemiTokenizer":
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: not a tokenizer JSON file ({err})") from None
        if not isinstance(data, dict) or data.get("tokenizer") != "mstoolkit.RemiTokenizer":
            raise UserError(f"{path}: not a saved mstoolkit.RemiTokenizer")
        return cls(TokenizerConfig.from_dict(data["config"]))

    # ------------------------------------------------------------------ quantization rules
    def quantize_velocity(self, velocity: int) -> int:
        """The bin centre a velocity is stored as (nearest, ties to the lower)."""
        return self.config.velocities[self._velocity_bin[min(max(int(velocity), 0), 127)]]

    def quantize_tempo(self, bpm: float) -> float:
        """The tempo bin a bpm value is stored as (nearest on a log scale)."""
        return self.config.tempos[self._tempo_index(np.array([bpm]))[0]]

    def _tempo_index(self, bpm: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._tempo_edges, np.log(bpm))

    def supported_time_signature(self, numerator: int, denominator: int) -> tuple[int, int]:
        """``(n, d)`` itself if supported, else a supported signature with the same bar length.

        Raises ValueError when there is none (e.g. 3/32, whose bar is 4.5 ticks, or 20/4).
        """
        if (numerator, denominator) in self.config.time_signatures:
            return numerator, denominator
        same = [(n, d) for n, d in self.config.time_signatures if Fraction(n, d) == Fraction(numerator, denominator)]
        if not same:
            length = bar_ticks(numerator, denominator)
            raise ValueError(f"time signature {numerator}/{denominator} (a bar of {float(length):g} ticks) is not "
                             f"supported by this tokenizer and no supported one has the same bar length")
        return max(same, key=lambda sig: sig[1])  # the one with the finest beat, e.g. 18/8 -> 9/4

    def quantize(self, piece: Piece) -> Piece:
        """The piece as the tokenizer stores it (see the module docstring for the rules).

        ``decode(encode(p))`` has the notes, tempi and time signatures of ``quantize(p)``.
        """
        low, high = self.config.pitch_range
        notes = []
        for n in piece.notes:
            pitch = n.pitch
            if n.is_drum and not low <= pitch <= high:
                continue
            while pitch < low:
                pitch += 12
            while pitch > high:
                pitch -= 12
            notes.append(Note(n.start, min(n.duration, self.config.max_duration), pitch,
                              self.quantize_velocity(n.velocity), 0 if n.is_drum else n.program, n.is_drum))
        tempos: list[TempoChange] = []
        for i, t in enumerate(piece.tempos):
            tick, bpm = (0 if i == 0 else t.tick), self.quantize_tempo(t.bpm)
            if tempos and tempos[-1].tick == tick:
                tempos.pop()
            tempos.append(TempoChange(tick, bpm))
        tempos = [t for i, t in enumerate(tempos) if i == 0 or t.bpm != tempos[i - 1].bpm]
        # Time signatures in force at each bar line (Piece's rule), up to the last change.
        last_ts = max(ts.tick for ts in piece.time_signatures)
        until = max(piece.end_tick, max(t.tick for t in piece.tempos) + 1, last_ts + self.config.max_bar_ticks + 1)
        sigs: list[TimeSignature] = []
        for start in piece.bar_starts(until):
            ts = piece.time_signature_at(start)
            n, d = self.supported_time_signature(ts.numerator, ts.denominator)
            if not sigs or (sigs[-1].numerator, sigs[-1].denominator) != (n, d):
                sigs.append(TimeSignature(start, n, d))
        return Piece(notes, tempos, sigs, piece.key, piece.name)

    # ------------------------------------------------------------------ encode
    def encode(self, x: Any) -> list[int]:
        """Token ids ``[BOS, ..., EOS]`` for a Piece, a MIDI path or bytes, a PrettyMIDI or a music21 stream."""
        if not isinstance(x, Piece):
            from mstoolkit.piece import load_piece

            x = load_piece(x)
        return self.encode_piece(x)

    def encode_piece(self, piece: Piece) -> list[int]:
        """Token ids for a :class:`Piece` (the fast path: numpy, no per-token Python)."""
        cfg, off = self.config, self._offset
        name = piece.name or "piece"
        if not piece.tempos or not piece.time_signatures:
            raise ValueError(f"{name}: the piece has no tempo or no time signature")
        notes = np.array([(n.start, n.duration, n.pitch, n.velocity, n.program, n.is_drum) for n in piece.notes],
                         dtype=np.int64).reshape(-1, 6)  # (N, 6)
        start, duration, pitch, velocity, program, drum = notes.T
        if len(notes) and (start.min() < 0 or duration.min() < 1 or pitch.min() < 0 or pitch.max() > 127
                           or velocity.min() < 0 or velocity.max() > 127 or program.min() < 0 or program.max() > 127):
            raise ValueError(f"{name}: a note has a negative start, a duration < 1 or a pitch/velocity/program "
                             f"outside 0-127")
        low, high = cfg.pitch_range
        keep = (drum == 0) | ((pitch >= low) & (pitch <= high))  # drums out of range are dropped
        start, duration, pitch, velocity, program, drum = notes[keep].T
        pitch = np.where(pitch < low, pitch + 12 * ((low - pitch + 11) // 12), pitch)  # octave shifts
        pitch = np.where(pitch > high, pitch - 12 * ((pitch - high + 11) // 12), pitch)
        duration = np.minimum(duration, cfg.max_duration)
        program = np.where(drum == 1, DRUMS, program)

        tempo_ticks, tempo_bins = self._tempo_changes(piece.tempos)
        until = max(int(start.max()) + 1 if len(start) else 1, int(tempo_ticks[-1]) + 1)
        bar_start, bar_sig = self._bar_layout(piece.time_signatures, until)  # (B,), (B,)
        n_bars = len(bar_start)

        # Every row holds up to 4 tokens (-1 = none) and a sort key; sorting the rows gives the sequence.
        note_bar = np.searchsorted(bar_start, start, side="right") - 1
        tempo_bar = np.searchsorted(bar_start, tempo_ticks, side="right") - 1
        note_pos, tempo_pos = start - bar_start[note_bar], tempo_ticks - bar_start[tempo_bar]
        slots = np.unique(np.concatenate([note_bar * self._max_bar + note_pos,
                                          tempo_bar * self._max_bar + tempo_pos]))
        slot_bar, slot_pos = np.divmod(slots, self._max_bar)
        sig_changed = np.ones(n_bars, dtype=bool)
        sig_changed[1:] = bar_sig[1:] != bar_sig[:-1]
        none = -1
        n_tempo, n_slot, n_note = len(tempo_bins), len(slots), len(start)
        rows = np.full((n_bars + n_slot + n_tempo + n_note, 4), none, dtype=np.int64)  # (R, 4)
        rows[:n_bars, 0] = off["Bar"]
        rows[:n_bars, 1] = np.where(sig_changed, off["TimeSig"] + bar_sig, none)
        r = n_bars
        rows[r:r + n_slot, 0] = off["Position"] + slot_pos
        r += n_slot
        rows[r:r + n_tempo, 0] = off["Tempo"] + tempo_bins
        r += n_tempo
        rows[r:, 0] = off["Program"] + program
        rows[r:, 1] = off["Pitch"] + pitch - low
        rows[r:, 2] = off["Velocity"] + self._velocity_bin[velocity]
        rows[r:, 3] = off["Duration"] + duration - 1
        zeros = lambda n: np.zeros(n, dtype=np.int64)  # noqa: E731
        key_bar = np.concatenate([np.arange(n_bars), slot_bar, tempo_bar, note_bar])
        key_pos = np.concatenate([np.full(n_bars, -1), slot_pos, tempo_pos, note_pos])
        key_kind = np.concatenate([zeros(n_bars + n_slot), np.ones(n_tempo, np.int64), np.full(n_note, 2)])
        pad = zeros(n_bars + n_slot + n_tempo)
        key_note = [np.concatenate([pad, k]) for k in (program, pitch, duration, velocity)]
        order = np.lexsort(key_note[::-1] + [key_kind, key_pos, key_bar])  # last key sorts first
        flat = rows[order].ravel()
        return [BOS] + flat[flat >= 0].tolist() + [EOS]

    def _tempo_changes(self, tempos: Sequence[TempoChange]) -> tuple[np.ndarray, np.ndarray]:
        """(ticks, bin indices) of the tempo changes after quantization: first at 0, no repeats."""
        ticks = np.array([t.tick for t in tempos], dtype=np.int64)
        ticks[0] = 0
        bins = self._tempo_index(np.array([t.bpm for t in tempos], dtype=np.float64))
        last_on_tick = np.append(ticks[1:] != ticks[:-1], True)  # several on one tick: the last wins
        ticks, bins = ticks[last_on_tick], bins[last_on_tick]
        changed = np.insert(bins[1:] != bins[:-1], 0, True)
        return ticks[changed], bins[changed]

    def _bar_layout(self, sigs: Sequence[TimeSignature], until: int) -> tuple[np.ndarray, np.ndarray]:
        """Bar start ticks and the time-signature index of every bar, covering ``[0, until)`` and all changes."""
        index_of: dict[tuple[int, int], int] = {}  # (n, d) in the piece -> index of the supported signature
        starts, bar_sig = [], []
        tick, i = 0, 0
        while True:
            while i + 1 < len(sigs) and sigs[i + 1].tick <= tick:
                i += 1
            key = (sigs[i].numerator, sigs[i].denominator)
            if key not in index_of:
                index_of[key] = self._ts.index(self.supported_time_signature(*key))
            starts.append(tick)
            bar_sig.append(index_of[key])
            tick += int(self._ts_ticks[index_of[key]])
            if tick >= until and i + 1 >= len(sigs):
                return np.array(starts, dtype=np.int64), np.array(bar_sig, dtype=np.int64)

    # ------------------------------------------------------------------ decode
    def note_groups(self, ids: Sequence[int]) -> tuple[Piece, list[list[int]]]:
        """The piece of ``ids`` and, for each of its notes (in ``piece.notes`` order), its token indices:
        what links an attention map over tokens to the notes a listener hears.

        A note is the four tokens ``Program Pitch Velocity Duration`` (its ``Position`` token is shared
        with every note starting on the same tick, so it belongs to none). Notes are matched to
        ``decode(ids).notes`` by walking the tokens with the REMI rules (Bar, TimeSig, Position).

            >>> tok = RemiTokenizer()
            >>> ids = tok.encode(Piece([Note(0, 12, 60, 80)]))
            >>> piece, groups = tok.note_groups(ids)
            >>> [tok.tokens(ids)[i] for i in groups[0]]
            ['Program_0', 'Pitch_60', 'Velocity_80', 'Duration_12']
        """
        piece = self.decode(ids)
        names = self.tokens(ids)
        found: list[tuple[Note, list[int]]] = []
        bar_start = bar_len = position = 0
        seen_bar = False
        for i, name in enumerate(names):
            kind, _, value = name.partition("_")
            if kind == "Bar":
                bar_start, seen_bar = (bar_start + bar_len if seen_bar else 0), True
            elif kind == "TimeSig":  # right after its Bar: sets the length of this bar
                numerator, denominator = value.split("/")
                bar_len = int(bar_ticks(int(numerator), int(denominator)))
            elif kind == "Position":
                position = int(value)
            elif kind == "Program":
                pitch, velocity, duration = (int(names[i + k].partition("_")[2]) for k in (1, 2, 3))
                drum = value == "drums"
                note = Note(bar_start + position, duration, pitch, velocity, 0 if drum else int(value), drum)
                found.append((note, [i, i + 1, i + 2, i + 3]))
        found.sort(key=lambda item: item[0])  # Piece keeps its notes sorted by Note's fields; stable for ties
        if [note for note, _ in found] != piece.notes:
            raise ValueError("note_groups: the notes found in the tokens differ from decode(ids)")
        return piece, [group for _, group in found]

    def decode(self, ids: Iterable[int]) -> Piece:
        """The :class:`Piece` of a token sequence; ValueError (naming index and token) if the grammar rejects it.

        A leading BOS, the EOS and any PAD after it are optional.
        """
        ids = _id_list(ids)
        self.grammar.check(ids)
        body = np.array(ids, dtype=np.int64)
        body = body[1 if ids[:1] == [BOS] else 0:]
        body = body[(self._type_code[body] != _T["EOS"]) & (self._type_code[body] != _T["PAD"])]
        types, values = self._type_code[body], self._value[body]  # (T,), (T,)
        index = np.arange(len(body))

        is_bar = types == _T["Bar"]
        bar_of = np.cumsum(is_bar) - 1  # (T,) bar index of every token
        n_bars = int(is_bar.sum())
        bar_sig = np.full(n_bars, -1, dtype=np.int64)
        sig_at = np.flatnonzero(types == _T["TimeSig"])
        bar_sig[bar_of[sig_at]] = values[sig_at]
        stated = bar_sig >= 0
        bar_sig = bar_sig[np.maximum.accumulate(np.where(stated, np.arange(n_bars), 0))]  # forward fill
        bar_len = self._ts_ticks[bar_sig]
        bar_start = np.concatenate([[0], np.cumsum(bar_len)[:-1]])  # (B,)
        last_position = np.maximum.accumulate(np.where(types == _T["Position"], index, 0))
        tick = bar_start[bar_of] + values[last_position]  # (T,) onset of Tempo / Program tokens

        p = np.flatnonzero(types == _T["Program"])  # each note is Program Pitch Velocity Duration
        start, pitch, velocity, duration = tick[p], values[p + 1], values[p + 2], values[p + 3]
        drum = values[p] == DRUMS
        program = np.where(drum, 0, values[p])
        order = np.lexsort((drum, program, velocity, pitch, duration, start))  # Note's field order
        notes = [Note(*fields) for fields in zip(start[order].tolist(), duration[order].tolist(),
                                                 pitch[order].tolist(), velocity[order].tolist(),
                                                 program[order].tolist(), drum[order].tolist())]

        t = np.flatnonzero(types == _T["Tempo"])
        t = t[np.argsort(tick[t], kind="stable")]
        t_tick, t_bin = tick[t], values[t]
        last_on_tick = np.append(t_tick[1:] != t_tick[:-1], True)
        t_tick, t_bin = t_tick[last_on_tick], t_bin[last_on_tick]
        changed = np.insert(t_bin[1:] != t_bin[:-1], 0, True)
        tempos = [TempoChange(k, self.config.tempos[b])
                  for k, b in zip(t_tick[changed].tolist(), t_bin[changed].tolist())]

        changed = np.insert(bar_sig[1:] != bar_sig[:-1], 0, True)
        sigs = [TimeSignature(k, *self._ts[s]) for k, s in zip(bar_start[changed].tolist(), bar_sig[changed].tolist())]
        return Piece(notes, tempos, sigs)

    # ------------------------------------------------------------------ grammar
    @cached_property
    def grammar(self) -> Grammar:
        """The DFA of valid sequences; states track the current bar length (see :class:`Grammar`)."""
        off, count, vocab = self._offset, self._count, self.vocab_size
        lengths = sorted(set(self._ts_ticks.tolist()))
        length_class = np.array([lengths.index(t) for t in self._ts_ticks.tolist()])  # (n_ts,)
        n_len = len(lengths)
        kinds = ("first TimeSig", "first Position", "Bar", "TimeSig", "Position", "Tempo",
                 "Program", "Pitch", "Velocity", "Duration")
        start, first_bar, end = 0, 1, 2
        base = {kind: 3 + k * n_len for k, kind in enumerate(kinds)}  # state of (kind, bar-length class)
        n_states = 3 + len(kinds) * n_len
        names = ["start (after BOS)", "after the first Bar", "end (after EOS)"] + [
            f"after {kind} (bar of {length} ticks)" for kind in kinds for length in lengths]
        span = lambda kind: slice(off[kind], off[kind] + count[kind])  # noqa: E731
        ts_ids = np.arange(off["TimeSig"], off["TimeSig"] + count["TimeSig"])

        ns = np.full((n_states, vocab), -1, dtype=np.int32)  # (n_states, V)
        ns[start, off["Bar"]] = first_bar
        ns[first_bar, ts_ids] = base["first TimeSig"] + length_class
        ns[end, PAD] = end
        for c, length in enumerate(lengths):
            state = {kind: base[kind] + c for kind in kinds}
            positions = slice(off["Position"], off["Position"] + length)  # only inside the bar
            ns[state["first TimeSig"], off["Position"]] = state["first Position"]  # Position_0
            ns[state["first Position"], span("Tempo")] = state["Tempo"]
            for kind in ("Bar", "TimeSig", "Tempo", "Duration"):  # between events
                ns[state[kind], positions] = state["Position"]
                ns[state[kind], off["Bar"]] = state["Bar"]
                ns[state[kind], EOS] = end
            ns[state["Bar"], ts_ids] = base["TimeSig"] + length_class
            ns[state["Position"], span("Tempo")] = state["Tempo"]
            for kind in ("Position", "Tempo", "Duration"):
                ns[state[kind], span("Program")] = state["Program"]
            ns[state["Program"], span("Pitch")] = state["Pitch"]
            ns[state["Pitch"], span("Velocity")] = state["Velocity"]
            ns[state["Velocity"], span("Duration")] = state["Duration"]
        accepting = np.zeros(n_states, dtype=bool)
        accepting[end] = True
        for kind in ("Bar", "TimeSig", "Tempo", "Duration"):
            accepting[base[kind]:base[kind] + n_len] = True
        return Grammar(ns, start, accepting, tuple(self._names), tuple(names))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("grammar", None)  # rebuilt on demand; keeps pickles (e.g. to DataLoader workers) small
        return state
