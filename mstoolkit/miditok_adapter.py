"""Use a MidiTok tokenizer where mstoolkit's :class:`~mstoolkit.tokenizer.RemiTokenizer` is expected.

Optional: needs ``pip install 'mstoolkit[miditok]'`` (MidiTok 3 with its symusic MIDI backend).
The adapter speaks ``Piece`` and plain id lists like ours: ``encode(x) -> [BOS, ..., EOS]``,
``decode(ids) -> Piece``, ``tokens``, ``token_types``, ``bar_ids``, ``vocab``, ``vocab_size``, ``save`` / ``load``.
MidiTok has no grammar, so ``grammar`` is ``None`` (samplers then run unconstrained).

    >>> tok = MidiTokAdapter()  # doctest: +SKIP
    >>> piece = tok.decode(tok.encode("song.mid"))  # doctest: +SKIP

Pieces travel to MidiTok as a ``symusic.Score`` at 12 ticks per quarter (one track per program
and drum flag) and come back from the decoded score snapped to the 12-per-quarter grid (nearest
tick, halves up; a note lasts at least one tick).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from mstoolkit.piece import TICKS_PER_QUARTER, Note, Piece, TempoChange, TimeSignature


def _miditok():
    try:
        import miditok
    except ImportError as err:
        raise ImportError("MidiTokAdapter needs MidiTok: pip install 'mstoolkit[miditok]'") from err
    return miditok


def default_remi():
    """A MidiTok REMI configured like :class:`~mstoolkit.tokenizer.RemiTokenizer`: 12 positions per beat,
    durations up to 16 beats, 32 velocities, 40 log-spaced tempi in 24-240 bpm, programs, tempo and
    time-signature tokens, specials PAD/BOS/EOS at ids 0/1/2."""
    miditok = _miditok()
    return miditok.REMI(miditok.TokenizerConfig(
        pitch_range=(0, 127), beat_res={(0, 16): 12}, num_velocities=32, special_tokens=["PAD", "BOS", "EOS"],
        use_programs=True, use_tempos=True, num_tempos=40, tempo_range=(24, 240), log_tempos=True,
        use_time_signatures=True, time_signature_range={1: (1, 4), 2: (1, 8), 4: (1, 16), 8: (1, 16), 16: (1, 16)}))


class MidiTokAdapter:
    """A MidiTok tokenizer (one token stream, e.g. REMI with ``use_programs``) behind mstoolkit's API.

        >>> MidiTokAdapter().vocab_size  # doctest: +SKIP
        839
    """

    grammar = None  # MidiTok defines no token grammar

    def __init__(self, tokenizer: Any = None) -> None:
        self.tokenizer = tokenizer if tokenizer is not None else default_remi()
        if not self.tokenizer.one_token_stream:
            raise ValueError("MidiTokAdapter needs a MidiTok tokenizer with one token stream "
                             "(e.g. use_programs=True, one_token_stream_for_programs=True)")
        self.vocab: dict[str, int] = dict(self.tokenizer.vocab)
        missing = [name for name in ("PAD_None", "BOS_None", "EOS_None") if name not in self.vocab]
        if missing:
            raise ValueError(f"MidiTokAdapter: the MidiTok tokenizer lacks the special tokens {missing}")
        self.pad_id, self.bos_id, self.eos_id = (self.vocab[n] for n in ("PAD_None", "BOS_None", "EOS_None"))
        self._names = [name for name, _ in sorted(self.vocab.items(), key=lambda item: item[1])]
        self.token_types: list[str] = [name.split("_")[0] for name in self._names]

    @property
    def vocab_size(self) -> int:
        return len(self._names)

    @property
    def bar_ids(self) -> tuple[int, ...]:
        """The ids of the tokens that start a bar (MidiTok's ``Bar_None``), as :attr:`RemiTokenizer.bar_ids`."""
        return tuple(i for i, kind in enumerate(self.token_types) if kind == "Bar")

    def tokens(self, ids: Iterable[int]) -> list[str]:
        return [self._names[i] for i in self._checked(ids)]

    def encode(self, x: Any) -> list[int]:
        """``[BOS, ..., EOS]`` for anything :func:`mstoolkit.piece.load_piece` takes."""
        if not isinstance(x, Piece):
            from mstoolkit.piece import load_piece

            x = load_piece(x)
        return [self.bos_id] + list(self.tokenizer.encode(piece_to_score(x)).ids) + [self.eos_id]

    def decode(self, ids: Iterable[int]) -> Piece:
        """The piece of an id sequence (BOS, EOS and PAD are dropped)."""
        specials = (self.pad_id, self.bos_id, self.eos_id)
        body = [i for i in self._checked(ids) if i not in specials]
        return score_to_piece(self.tokenizer.decode(body))

    def _checked(self, ids: Iterable[int]) -> list[int]:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        for index, token in enumerate(ids):
            if not (isinstance(token, int) and 0 <= token < len(self._names)):
                raise ValueError(f"token id {token!r} at index {index} is not an id in 0..{len(self._names) - 1}")
        return ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MidiTokAdapter) and other.tokenizer == self.tokenizer

    __hash__ = None  # mutable MidiTok object inside

    def save(self, path: str | Path) -> None:
        """MidiTok's own JSON (its config and tokenization name)."""
        self.tokenizer.save(Path(path))

    @classmethod
    def load(cls, path: str | Path) -> "MidiTokAdapter":
        miditok = _miditok()
        try:
            name = json.loads(Path(path).read_text())["tokenization"]
            tokenizer_class = getattr(miditok, name)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}: not a saved MidiTok tokenizer ({err})") from None
        return cls(tokenizer_class(params=Path(path)))


def piece_to_score(piece: Piece):
    """A ``symusic.Score`` at 12 ticks per quarter, one track per (program, drum flag)."""
    from symusic import Score, Tempo, TimeSignature as SymTimeSignature, Track
    from symusic import Note as SymNote

    score = Score(TICKS_PER_QUARTER)
    groups: dict[tuple[int, bool], list[Note]] = {}
    for n in piece.notes:
        groups.setdefault((0 if n.is_drum else n.program, n.is_drum), []).append(n)
    for (program, is_drum), notes in sorted(groups.items()):
        track = Track("Drums" if is_drum else f"Program {program}", program=program, is_drum=is_drum)
        columns = np.array([(n.start, n.duration, n.pitch, n.velocity) for n in notes], dtype=np.int32)  # (N, 4)
        track.notes = SymNote.from_numpy(*columns.T)
        score.tracks.append(track)
    for t in piece.tempos:
        score.tempos.append(Tempo(t.tick, qpm=t.bpm))
    for ts in piece.time_signatures:
        score.time_signatures.append(SymTimeSignature(ts.tick, ts.numerator, ts.denominator))
    return score


def score_to_piece(score) -> Piece:
    """A ``symusic.Score`` (in ticks) as a :class:`Piece` on the 12-per-quarter grid."""
    scale = TICKS_PER_QUARTER / score.ticks_per_quarter
    grid = lambda ticks: np.floor(np.asarray(ticks, dtype=np.float64) * scale + 0.5).astype(np.int64)  # noqa: E731
    notes = []
    for track in score.tracks:
        arrays = track.notes.numpy()
        start, end = grid(arrays["time"]), grid(arrays["time"] + arrays["duration"])
        program, is_drum = (0, True) if track.is_drum else (int(track.program), False)
        notes += [Note(s, max(1, e - s), p, v, program, is_drum) for s, e, p, v in
                  zip(start.tolist(), end.tolist(), arrays["pitch"].tolist(), arrays["velocity"].tolist())]
    tempos = [TempoChange(int(grid(t.time)), round(float(t.qpm), 3)) for t in score.tempos]
    sigs = [TimeSignature(int(grid(ts.time)), int(ts.numerator), int(ts.denominator)) for ts in score.time_signatures]
    return Piece(notes, tempos, sigs)
