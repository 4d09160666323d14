"""No note twice: while decoding, a pitch an instrument has already started at this onset cannot be
started again there.

Two identical notes at one onset (same instrument, same pitch) sound as one: MIDI has one key per pitch
and channel. Yet a small model decoding greedily can fall into a loop that writes the same note again
and again: a straight chorale came back with 178 copies of one B at one onset, 431 notes for 288, and the
loop ate the token budget of its window (``benchmarks/results/stylebench_v2.md``, "No note twice").
:class:`UniqueNotes` makes such a repeat impossible: wherever the next token is a ``Pitch`` (the last one
was a ``Program``), the pitches that ``Program`` already started at the current onset (bar and
``Position``, however often that Position is stated) get a logit of ``-inf``. Nothing else changes: a
chord is still any set of different pitches, another instrument may double a pitch, and a pitch may sound
again at the next onset.

    >>> rule = UniqueNotes(tokenizer)
    >>> rows = generate(model, content_ids, mel, grammar=tokenizer.grammar, unique_notes=rule)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch

ONSETS_PER_BAR = 1 << 16  # onset number = bar * this + tick: more ticks than any bar has


class UniqueNotes:
    """The rule's token tables for one tokenizer; :meth:`bind` makes the per-batch state.

        >>> UniqueNotes(tokenizer).n_programs  # 128 General-MIDI programs and the drum kit
        129
    """

    def __init__(self, tokenizer: Any) -> None:
        vocab: dict[str, int] = tokenizer.vocab
        size = tokenizer.vocab_size
        self.pitch = torch.full((size,), -1, dtype=torch.long)  # (V,) MIDI pitch of each Pitch token, -1 elsewhere
        self.program = torch.full((size,), -1, dtype=torch.long)  # (V,) index of each Program token, -1 elsewhere
        self.position = torch.full((size,), -1, dtype=torch.long)  # (V,) tick of each Position token, -1 elsewhere
        self.bar_id = vocab["Bar"]
        programs = sorted(i for name, i in vocab.items() if name.startswith("Program_"))
        for name, i in vocab.items():
            kind, _, value = name.partition("_")
            if kind == "Pitch":
                self.pitch[i] = int(value)
            elif kind == "Position":
                self.position[i] = int(value)
        for index, i in enumerate(programs):
            self.program[i] = index
        self.n_programs = len(programs)

    def bind(self, batch_size: int, max_tokens: int, device: torch.device | str = "cpu") -> "UniqueNotesState":
        """The state of ``batch_size`` rows decoded side by side, ``max_tokens`` tokens each at most."""
        return UniqueNotesState(self, batch_size, max_tokens, torch.device(device))


class UniqueNotesState:
    """Per row: the onset (bar and tick) being written, its instrument, and every note started so far as one
    number ``((onset * programs) + program) * 128 + pitch``, in fixed-shape tensors updated in place (so a
    Decoder can snapshot, restore and reorder them with the rest of its state). A note takes four tokens, so
    ``max_tokens // 4 + 1`` slots hold them all. Keyed by the onset itself, not by the last Position token:
    the grammar lets a bar state one Position twice (decoding sorts the notes), and a repeat written after
    a return to an earlier Position is a repeat all the same."""

    def __init__(self, rule: UniqueNotes, batch_size: int, max_tokens: int, device: torch.device) -> None:
        self.pitch = rule.pitch.to(device)  # (V,)
        self.program_of = rule.program.to(device)  # (V,)
        self.position = rule.position.to(device)  # (V,)
        self.bar_id, self.n_programs = rule.bar_id, rule.n_programs
        self.is_pitch = self.pitch >= 0  # (V,)
        B = batch_size
        self.notes = torch.full((B, max_tokens // 4 + 1), -1, dtype=torch.long, device=device)  # (B, slots) -1: free
        self.count = torch.zeros(B, dtype=torch.long, device=device)  # (B,) notes started so far
        self.bar = torch.zeros(B, dtype=torch.long, device=device)  # (B,) Bar tokens so far
        self.tick = torch.zeros(B, dtype=torch.long, device=device)  # (B,) tick of the latest Position in the bar
        self.program = torch.zeros(B, dtype=torch.long, device=device)  # (B,) the row's latest Program index

    def tensors(self) -> list[torch.Tensor]:
        """The mutable state (for ``Decoder.snapshot`` and beam reordering)."""
        return [self.notes, self.count, self.bar, self.tick, self.program]

    def reset(self) -> None:
        self.notes.fill_(-1)
        for tensor in (self.count, self.bar, self.tick, self.program):
            tensor.zero_()

    def _instrument_now(self) -> torch.Tensor:
        """``(B,)``: the number of (this onset, this instrument); a note's number is this * 128 + pitch."""
        return (self.bar * ONSETS_PER_BAR + self.tick) * self.n_programs + self.program

    def mask(self, last_token: torch.Tensor) -> torch.Tensor:
        """Additive logits ``(B, V)``: ``-inf`` at the Pitch tokens whose pitch the row's current Program
        already started at this onset, in the rows whose ``last_token (B,)`` is a Program; 0 elsewhere."""
        here = torch.div(self.notes, 128, rounding_mode="floor") == self._instrument_now()[:, None]  # (B, slots)
        started = torch.zeros(len(here), 128, device=here.device)  # (B, 128)
        started.scatter_add_(1, self.notes.remainder(128), here.float())
        repeat = (started > 0)[:, self.pitch.clamp_min(0)] & self.is_pitch[None, :]  # (B, V)
        banned = repeat & (self.program_of[last_token] >= 0)[:, None]  # (B, V)
        return torch.zeros(banned.shape, device=banned.device).masked_fill(banned, float("-inf"))

    def update(self, token: torch.Tensor) -> None:
        """Follow the decoded ``token (B,)``: a Bar starts a bar at tick 0, a Position moves the tick, a
        Program becomes the row's instrument, a Pitch is recorded as a note started by it at this onset."""
        new_bar = token == self.bar_id
        tick = self.position[token]  # (B,) -1 unless a Position
        self.bar += new_bar.long()
        self.tick.copy_(torch.where(new_bar, 0, torch.where(tick >= 0, tick, self.tick)))
        program = self.program_of[token]  # (B,) -1 unless a Program
        self.program.copy_(torch.where(program >= 0, program, self.program))
        pitch = self.pitch[token]  # (B,) -1 unless a Pitch
        slot = self.count.clamp_max(self.notes.shape[1] - 1)[:, None]  # (B, 1)
        note = self._instrument_now() * 128 + pitch  # (B,)
        self.notes.scatter_(1, slot, torch.where(pitch >= 0, note, self.notes.gather(1, slot)[:, 0])[:, None])
        self.count += (pitch >= 0).long()
