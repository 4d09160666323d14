"""Keep the content's harmony while decoding: a note may only take a pitch class that the content
sounds near the note's onset.

A style changes rhythm, texture and register, and (in every StyleBench style) keeps the harmony: an
Alberti bass, a stride left hand or a waltz's oom-pah re-voices the chord that sounds in the content at
that moment. A transfer model that writes a pitch class the content does not hold there is almost
always wrong (``benchmarks/recoverable_notes.py``: 90% of target notes have their pitch class in the
content within a beat). :class:`HarmonyLock` turns that into a decoding constraint: wherever the next
token is a ``Pitch`` (the last one was a pitched ``Program``), the pitches whose class does not sound in
the content within ``window_beats`` of the current position get a logit of ``-inf``. The model still
chooses the octave, the voice and how many notes; where the content is silent nothing is masked.

    >>> lock = HarmonyLock(tokenizer, window_beats=1.0)
    >>> rows = generate(model, content_ids, mel, grammar=tokenizer.grammar, harmony=lock)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch

from mstoolkit.config import MUSICAL_BAR_TICKS

TICKS_PER_BEAT = MUSICAL_BAR_TICKS // 4  # a quarter note in the model's musical time


class HarmonyLock:
    """The constraint's settings and token tables for one tokenizer; :meth:`bind` makes the per-batch state.

    ``window_beats``: how far (in quarter notes, before or after the current position) a content note
    may sound and still allow its pitch class.

        >>> HarmonyLock(tokenizer, 1.0).window_ticks
        12
    """

    def __init__(self, tokenizer: Any, window_beats: float = 1.0) -> None:
        self.tokenizer = tokenizer
        if not window_beats >= 0:
            raise ValueError(f"HarmonyLock: window_beats must be >= 0, got {window_beats!r}")
        self.window_beats = float(window_beats)
        self.window_ticks = round(window_beats * TICKS_PER_BEAT)
        vocab: dict[str, int] = tokenizer.vocab
        size = tokenizer.vocab_size
        pitch_class = torch.full((size,), -1, dtype=torch.long)  # (V,) pitch class of each Pitch token, -1 elsewhere
        is_program = torch.zeros(size, dtype=torch.bool)  # (V,) pitched Program tokens (not the drum kit)
        for name, i in vocab.items():
            kind, _, value = name.partition("_")
            if kind == "Pitch":
                pitch_class[i] = int(value) % 12
            elif kind == "Program" and value != "drums":
                is_program[i] = True
        self.pitch_class, self.is_program = pitch_class, is_program
        self.drums_id = vocab.get("Program_drums", -1)

    def bind(self, content_ids: torch.Tensor, notes: Any, grid: Any) -> "HarmonyState":
        """The state of one batch: content ``content_ids (B, S)``, its notes (``mstoolkit.model.ContentNotes``:
        ``pitch``, ``onset``, ``end``, each ``(B, S)``) and the token ids of the beat grid (``grid.bar_id``,
        ``position_id``, ``n_positions``, ``pad_id``; what ``ModelConfig.beat_grid_from`` gives)."""
        return HarmonyState(self, content_ids, notes, grid)


class HarmonyState:
    """Per-row decoding position (bar count and tick) and the content's notes, as fixed-shape tensors
    updated in place (so a Decoder can snapshot and restore them with the rest of its state)."""

    def __init__(self, lock: HarmonyLock, content_ids: torch.Tensor, notes: Any, grid: Any) -> None:
        device = content_ids.device
        self.lock, self.cfg = lock, grid
        self.pitch_class = lock.pitch_class.to(device)  # (V,)
        self.is_program = lock.is_program.to(device)  # (V,)
        previous = torch.nn.functional.pad(content_ids[:, :-1], (1, 0), value=grid.pad_id)  # (B, S)
        is_note = (notes.pitch >= 0) & (previous != lock.drums_id)  # (B, S) pitched content notes
        classes = self.pitch_class[content_ids.clamp(0, len(self.pitch_class) - 1)].clamp_min(0)  # (B, S)
        self.note_classes = torch.nn.functional.one_hot(classes, 12).bool() & is_note[..., None]  # (B, S, 12)
        self.onset, self.end = notes.onset, notes.end  # (B, S) ticks
        B = content_ids.shape[0]
        self.bar = torch.zeros(B, dtype=torch.long, device=device)  # Bar tokens decoded so far
        self.tick = torch.zeros(B, dtype=torch.long, device=device)  # tick of the latest Position in this bar

    def tensors(self) -> list[torch.Tensor]:
        """The mutable state (for ``Decoder.snapshot``)."""
        return [self.bar, self.tick]

    def reset(self) -> None:
        self.bar.zero_()
        self.tick.zero_()

    def allowed_classes(self) -> torch.Tensor:
        """``(B, 12)``: the pitch classes the content sounds within the window of each row's position
        (all twelve where it sounds none)."""
        now = (self.bar * MUSICAL_BAR_TICKS + self.tick)[:, None]  # (B, 1) musical time, as the content's onsets
        w = self.lock.window_ticks
        near = (self.onset <= now + w) & (self.end > now - w)  # (B, S)
        allowed = (self.note_classes & near[..., None]).any(1)  # (B, 12)
        return allowed | ~allowed.any(1, keepdim=True)

    def mask(self, last_token: torch.Tensor) -> torch.Tensor:
        """Additive logits ``(B, V)``: ``-inf`` at Pitch tokens of a class not allowed, in the rows whose
        ``last_token (B,)`` is a pitched Program (so a Pitch comes next); 0 elsewhere."""
        allowed = self.allowed_classes()  # (B, 12)
        is_pitch = self.pitch_class >= 0  # (V,)
        ok = torch.gather(allowed, 1, self.pitch_class.clamp_min(0).expand(len(allowed), -1))  # (B, V)
        banned = is_pitch[None, :] & ~ok & self.is_program[last_token][:, None]  # (B, V)
        return torch.zeros(banned.shape, device=banned.device).masked_fill(banned, float("-inf"))

    def update(self, token: torch.Tensor) -> None:
        """Follow the decoded ``token (B,)``: a Bar starts a new bar at tick 0, a Position moves the tick."""
        cfg = self.cfg
        new_bar = token == cfg.bar_id
        tick = token - cfg.position_id
        is_position = (tick >= 0) & (tick < cfg.n_positions)
        self.bar += new_bar.long()
        self.tick.copy_(torch.where(new_bar, 0, torch.where(is_position, tick, self.tick)))
