"""Generation: sampling filters, KV-cached decoding (replayed as a CUDA graph on GPUs), grammar-
constrained and batched decoding with token and bar limits, bar-by-bar streaming with a style switch
mid-stream, and the one-call :func:`transfer`.

    >>> ids = generate(model, content_ids, mel, max_new_tokens=256, temperature=0.9, top_p=0.95,
    ...                grammar=tokenizer.grammar)          # list of [BOS, ..., EOS] id lists
    >>> piece = transfer(model, tokenizer, "bach.mid", "swing_reference.wav")  # doctest: +SKIP

How a step works (:class:`Decoder`): every piece of per-step state (last token, position, grammar
state, finished flags, bar counts, the output buffer and the KV cache) is a device tensor of fixed
shape, updated in place. A step is ``model.decode_step`` + :meth:`Decoder._advance` (grammar mask,
temperature, top-k, top-p, sampling, EOS/bar bookkeeping), all on the device with no host sync, so on
CUDA one step is captured once as a CUDA graph and replayed (optionally compiled first with
``torch.compile`` to fuse its small kernels). On CPU the same function runs eagerly.

Only torch, numpy and the tokenizer's constants are imported here; :func:`transfer` imports the
audio/style side lazily.
"""
from __future__ import annotations

import dataclasses

import os
import time
import warnings
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np
import torch

from mstoolkit.config import TRANSFER_TEMPERATURE, UserError
from mstoolkit.harmony import HarmonyLock
from mstoolkit.model import ContentNotes, ModelConfig, MusicStyleTransformer
from mstoolkit.tokenizer import BOS, EOS  # the tokenizer contract: PAD = 0 (model.config.pad_id), BOS = 1, EOS = 2
from mstoolkit.unique_notes import UniqueNotes


# ------------------------------------------------------------------------------ sampling filters
def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature``: below 1 sharpens, above 1 flattens (the seed suggests 0.7-1.2).

        >>> apply_temperature(torch.tensor([2.0, 0.0]), 2.0)
        tensor([1., 0.])
    """
    if temperature <= 0:
        raise ValueError(f"apply_temperature: temperature must be > 0 (use greedy decoding for 0), got {temperature}")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row, set the rest to -inf (ties with the k-th are kept).

        >>> top_k_filter(torch.tensor([[1.0, 3.0, 2.0]]), 2)
        tensor([[-inf, 3., 2.]])
    """
    if k < 1:
        raise ValueError(f"top_k_filter: k must be >= 1, got {k}")
    kth = logits.topk(min(k, logits.size(-1)), dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches ``p``.

        >>> top_p_filter(torch.tensor([[0.0, 2.0, 1.0]]).log(), 0.6)   # probs 0, 2/3, 1/3
        tensor([[  -inf, 0.6931,   -inf]])
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p_filter: p must be in (0, 1], got {p}")
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (..., V)
    probs = sorted_logits.softmax(dim=-1)
    drop = probs.cumsum(dim=-1) - probs >= p  # the mass before this token already reaches p; top token kept
    return logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row of ``probs (B, V)`` -> ids ``(B,)``, distributed like ``torch.multinomial(probs, 1)``.

    Uses ``argmax(p / E)`` with ``E ~ Exponential(1)`` (the exponential race): no host sync and no
    data-dependent shapes, so it runs inside a CUDA graph. Zero-probability tokens are never drawn.
    """
    race = torch.empty_like(probs).exponential_(generator=generator).clamp_min_(1e-30)  # (B, V)
    return (probs / race).argmax(dim=-1)


# ------------------------------------------------------------------------------ the decoder
class Decoder:
    """Batched, KV-cached decoding of one batch of content against a style reference.

    ``content_ids``: ``(B, S)`` tensor, a list of id lists (padded here) or one id list;
    ``style_mel``: ``(n_mels, frames)`` (shared by the batch) or ``(B, n_mels, frames)``.
    ``max_new_tokens``: default ``min(1024, model max_len - 1)``. ``temperature=0`` decodes greedily.
    ``grammar``: an object with ``next_state (n_states, V)``, ``start_state`` and ``accepting
    (n_states,)`` (the tokenizer's ``grammar``): only tokens with ``next_state[state, token] >= 0``
    are sampled. ``bar_ids`` + ``max_bars``: a bar token that would start bar ``max_bars + 1``
    becomes EOS where EOS is allowed. ``harmony``: a :class:`~mstoolkit.harmony.HarmonyLock`, so every
    pitch takes a class the content sounds near it. ``unique_notes``: a :class:`~mstoolkit.unique_notes.UniqueNotes`,
    so no instrument starts one pitch twice at one onset (a greedy loop's repeats; lifted for a row it
    would leave nothing to write). ``cuda_graph``: replay each step as a CUDA graph (default: on
    CUDA without a ``generator``); ``compile``: ``torch.compile`` the step first (True, or a dict of
    ``torch.compile`` options, e.g. ``{"mode": "max-autotune-no-cudagraphs"}``). ``use_cache=False``
    recomputes the whole prefix each step (the reference for tests).
    ``beam_size=K > 1`` (with ``temperature=0``): beam search, K hypotheses per content row, each step
    keeping the K highest total log-probabilities (under the grammar, bar and harmony masks) among all
    their one-token extensions; :meth:`sequences` returns each row's best, ranked by
    ``log p / length ** length_penalty`` (0: the plain total). Why: greedy commits to each note's pitch
    before it sees the rest of its chord; a beam can keep a second voicing alive until the chord is written.
    Puts ``model`` in eval mode.

        >>> dec = Decoder(model, content_ids, mel, max_new_tokens=256, top_k=50)
        >>> dec.run(); rows = dec.sequences()
    """

    @torch.no_grad()
    def __init__(self, model: MusicStyleTransformer, content_ids: Any, style_mel: Any, *,
                 max_new_tokens: int | None = None, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, grammar: Any = None, bar_ids: Sequence[int] = (),
                 max_bars: int | None = None, use_cache: bool = True, cuda_graph: bool | None = None,
                 compile: bool | dict[str, Any] = False, generator: torch.Generator | None = None,
                 bos_id: int = BOS, eos_id: int = EOS, harmony: HarmonyLock | None = None, beam_size: int = 1,
                 length_penalty: float = 0.0, unique_notes: UniqueNotes | None = None) -> None:
        cfg = model.config
        self.model, self.device = model.eval(), model.target_emb.weight.device
        self.pad_id, self.bos_id, self.eos_id = cfg.pad_id, bos_id, eos_id
        if beam_size < 1 or beam_size > 1 and (temperature != 0 or compile):
            raise UserError(f"beam_size={beam_size}: expected >= 1; a beam (> 1) decodes greedily (temperature 0, "
                            f"got {temperature}) and eagerly (compile off)")
        self.beam_size, self.length_penalty = int(beam_size), float(length_penalty)
        # Beam search decodes K rows per content row, side by side: rows b*K .. b*K+K-1 are row b's beams.
        self.content = _as_ids(content_ids, cfg.pad_id, self.device).repeat_interleave(beam_size, 0)  # (B*K, S)
        B, S = self.content.shape
        max_new_tokens = min(1024, cfg.max_len - 1) if max_new_tokens is None else max_new_tokens
        if not 1 <= max_new_tokens < cfg.max_len:
            raise UserError(f"max_new_tokens: expected 1..{cfg.max_len - 1} (model max_len - 1), got {max_new_tokens}")
        if temperature < 0:
            raise UserError(f"temperature: must be >= 0 (0 = greedy), got {temperature}")
        if top_k is not None and top_k < 1 or top_p is not None and not 0 < top_p <= 1:
            raise UserError(f"top_k must be >= 1 and top_p in (0, 1], got top_k={top_k}, top_p={top_p}")
        if max_bars is not None and (max_bars < 1 or not bar_ids):
            raise UserError(f"max_bars={max_bars}: needs max_bars >= 1 and the bar token ids (bar_ids)")
        self.max_new_tokens, self.use_cache, self.generator = max_new_tokens, use_cache, generator
        self.temperature, self.top_k, self.top_p, self.max_bars = temperature, top_k, top_p, max_bars
        self.bar_ids = [int(b) for b in bar_ids]

        # Per-step state: fixed-shape device tensors, updated in place (a CUDA graph holds their addresses).
        V, long = cfg.vocab_size, dict(dtype=torch.long, device=self.device)
        self.token = torch.full((B,), bos_id, **long)  # last emitted token (the next decoder input)
        self.pos = torch.zeros(1, **long)  # its position
        self.out = torch.full((B, max_new_tokens + 1), cfg.pad_id, **long)  # BOS + generated tokens
        self.finished = torch.zeros(B, dtype=torch.bool, device=self.device)
        self.bars = torch.zeros(B, **long)  # bar tokens emitted so far
        self.score = torch.zeros(B, device=self.device)  # beam search: total log-prob of each row's hypothesis
        self.finished_logp = torch.full((V,), float("-inf"), device=self.device)  # a finished beam only pads,
        self.finished_logp[cfg.pad_id] = 0.0  # at no cost, so it competes with its final score
        self.is_bar = torch.zeros(V, dtype=torch.bool, device=self.device)
        self.is_bar[self.bar_ids] = True
        self.harmony = None
        if harmony is not None:  # the content's notes, read with the tokenizer's token ids
            grid = SimpleNamespace(**ModelConfig.beat_grid_from(harmony.tokenizer), pad_id=cfg.pad_id)
            self.harmony = harmony.bind(self.content, ContentNotes.from_ids(self.content, grid), grid)
        self.unique = unique_notes.bind(B, max_new_tokens, self.device) if unique_notes is not None else None
        self.grammar = grammar
        if grammar is None:  # without a grammar only PAD and BOS are never generated
            allowed = torch.ones(1, V, dtype=torch.bool, device=self.device)  # (1, V)
            allowed[:, [cfg.pad_id, bos_id]] = False
        else:
            next_state = torch.as_tensor(np.asarray(grammar.next_state), **long)  # (n_states, V)
            if next_state.dim() != 2 or next_state.shape[1] != V:
                raise ValueError(f"grammar.next_state: expected (n_states, {V}), got {tuple(next_state.shape)}")
            next_state[:, [cfg.pad_id, bos_id]] = -1  # finished rows are padded by the decoder itself
            next_state[(next_state < 0).all(dim=1), eos_id] = 0  # a dead end may only end the piece
            self.next_state, allowed = next_state, next_state >= 0
            self.state = torch.full((B,), int(grammar.start_state), **long)
        # 0 where a token is allowed, -inf where not; one row per grammar state: (n_states or 1, V)
        self.logit_mask = torch.zeros(allowed.shape, device=self.device).masked_fill(~allowed, float("-inf"))

        length = min(-(-(max_new_tokens + 1) // 64) * 64, cfg.max_len)  # a multiple of 64: aligned attention bias
        self.cache = model.new_cache(B, length, S)
        self.set_style(style_mel)
        self.reset()

        self.mode, self._graph = "uncached" if not use_cache else "eager", None
        # None: the eager cached step. Only a compiled step is kept as a function: a bound method stored on
        # self would make every Decoder a reference cycle, freed only by the cyclic GC, so a live session
        # opening a Decoder per window grew by ~0.4 MB a window until a collection (its KV cache).
        self._step_fn = None
        if use_cache and compile:
            options = {"fullgraph": True, "dynamic": False, **(compile if isinstance(compile, dict) else {})}
            self._step_fn, self.mode = torch.compile(self._cached_step, **options), "compiled"
        if cuda_graph is None:  # a beam step slices the cache up to the host's step count: not capturable
            cuda_graph = use_cache and self.device.type == "cuda" and generator is None and beam_size == 1
        if cuda_graph:
            self._capture()

    # -------------------------------------------------------------- public
    @torch.no_grad()
    def set_style(self, style_mel: Any) -> None:
        """Encode the content with a new style reference and refill the cross-attention cache.

        Decoded positions stay: the continuation is written in the new style.
        """
        rows = len(self.content) // self.beam_size  # content rows before the beams
        mel = _as_mel(style_mel, rows, self.model.config.n_mels, self.device)  # (rows, n_mels, frames)
        style = self.model.style_encoder(mel).repeat_interleave(self.beam_size, 0)  # (B, d_style)
        self.memory, self.memory_mask = self.model.encode(self.content, style)  # (B, S, d_model)
        self.model.fill_cross(self.cache, self.memory, self.memory_mask, self.content)

    @torch.no_grad()
    def reset(self) -> None:
        """Start again from BOS (same content and style)."""
        self.cache.clear()
        self.token.fill_(self.bos_id)
        self.pos.zero_()
        self.out.fill_(self.pad_id)
        self.out[:, 0] = self.bos_id
        self.finished.zero_()
        self.bars.zero_()
        self.score.zero_()
        self.score.view(-1, self.beam_size)[:, 1:] = float("-inf")  # all beams start equal: expand only the first
        if self.grammar is not None:
            self.state.fill_(int(self.grammar.start_state))
        if self.harmony is not None:
            self.harmony.reset()
        if self.unique is not None:
            self.unique.reset()
        self.n = 0  # tokens generated so far (host-side count)

    @torch.no_grad()
    def snapshot(self) -> tuple:
        """A copy of the decoding state (step state, output, KV cache, style memory) for :meth:`restore`:
        what lets a live stream go back to a beat and continue it in another style (``mstoolkit.live``).
        Model-agnostic: it copies every tensor the cache object holds, whatever the model puts there."""
        return self.n, (self.memory, self.memory_mask), [t.clone() for t in self._state_tensors()]

    @torch.no_grad()
    def restore(self, snapshot: tuple) -> None:
        """Put back a :meth:`snapshot` in place (same buffers, so a captured CUDA graph stays valid)."""
        self.n, (self.memory, self.memory_mask), saved = snapshot
        for tensor, value in zip(self._state_tensors(), saved, strict=True):
            tensor.copy_(value)

    def _state_tensors(self) -> list[torch.Tensor]:
        tensors = [self.token, self.pos, self.out, self.finished, self.bars, self.score]
        if self.grammar is not None:
            tensors.append(self.state)
        if self.harmony is not None:
            tensors += self.harmony.tensors()
        if self.unique is not None:
            tensors += self.unique.tensors()
        for value in vars(self.cache).values():  # tensors and per-layer lists of tensors
            if isinstance(value, torch.Tensor):
                tensors.append(value)
            elif isinstance(value, (list, tuple)):
                tensors += [v for v in value if isinstance(v, torch.Tensor)]
        return tensors

    @torch.no_grad()
    def step(self) -> None:
        """Generate one token for every row (``self.token``; all tokens so far in ``self.out``)."""
        if self.n >= self.max_new_tokens:
            raise ValueError(f"Decoder.step: max_new_tokens={self.max_new_tokens} already generated")
        if self._graph is not None:
            self._graph.replay()
        elif self._step_fn is not None:
            self._step_fn()
        elif self.use_cache:
            self._cached_step()
        else:
            self._uncached_step()
        self.n += 1

    @torch.no_grad()
    def run(self, check_every: int | None = None) -> None:
        """Step until every row has emitted EOS or ``max_new_tokens`` are generated.

        Whether all rows are done is read from the device every ``check_every`` steps (default: 1 on
        CPU, 32 on GPU, where each check stalls the launch queue); finished rows emit PAD meanwhile.
        """
        check_every = check_every or (32 if self.device.type == "cuda" else 1)
        while self.n < self.max_new_tokens:
            self.step()
            if self.n % check_every == 0 and bool(self.finished.all()):
                break

    def sequences(self) -> list[list[int]]:
        """The generated rows as ``[BOS, ..., EOS]`` id lists (see :meth:`complete`); with a beam, each
        content row's best hypothesis."""
        rows = [self.complete(row) for row in self.out[:, : self.n + 1].tolist()]
        if self.beam_size == 1:
            return rows
        lengths = torch.tensor([len(row) - 1 for row in rows], dtype=torch.float, device=self.device)
        ranked = (self.score / lengths.clamp_min(1) ** self.length_penalty).view(-1, self.beam_size)  # (B, K)
        best = ranked.argmax(dim=1).tolist()
        return [rows[b * self.beam_size + k] for b, k in enumerate(best)]

    def complete(self, ids: list[int]) -> list[int]:
        """Cut ``ids`` after its EOS; a row without one (it hit a limit) is cut back to its longest
        prefix the grammar accepts (if any) and gets an EOS where the grammar allows one."""
        if self.eos_id in ids:
            return ids[: ids.index(self.eos_id) + 1]
        if self.grammar is None:
            return ids + [self.eos_id]
        next_state, accepting = np.asarray(self.grammar.next_state), np.asarray(self.grammar.accepting)
        state = int(self.grammar.start_state)
        best = (1, state) if accepting[state] else None
        for i, token in enumerate(ids[1:], start=2):
            state = int(next_state[state, token])
            if state < 0:
                break
            if accepting[state]:
                best = (i, state)
        if best is None:
            return ids  # nothing complete yet: returned as is
        end, state = best
        return ids[:end] + ([self.eos_id] if next_state[state, self.eos_id] >= 0 else [])

    # -------------------------------------------------------------- one step
    def _cached_step(self) -> None:
        self._advance(self.model.decode_step(self.token, self.pos, self.cache))

    def _uncached_step(self) -> None:
        logits = self.model.next_token_logits(self.out[:, : self.n + 1], self.memory, self.memory_mask, self.content)
        self._advance(logits[:, -1])  # (B, V)

    def _advance(self, logits: torch.Tensor) -> None:
        """Sample the next token of every row from ``logits (B, V)`` and update the step state in place."""
        mask = self.logit_mask if self.grammar is None else self.logit_mask[self.state]  # (B or 1, V): 0 / -inf
        logits = logits.float() + mask  # (B, V)
        if self.harmony is not None:  # only the content's pitch classes near this position (mstoolkit.harmony)
            logits = logits + self.harmony.mask(self.token)
        if self.unique is not None:  # no pitch twice at one onset by one instrument (mstoolkit.unique_notes),
            unique = logits + self.unique.mask(self.token)  # unless that leaves a row nothing to write: a loop
            stuck = (unique == float("-inf")).all(dim=-1, keepdim=True)  # (B, 1) that went through every pitch
            logits = torch.where(stuck, logits, unique)
        if self.beam_size > 1:
            token = self._beam_select(logits, mask)  # (B,); the rows' state now follows the beams kept
        elif self.temperature == 0:
            token = logits.argmax(dim=-1)  # (B,)
        else:
            logits = apply_temperature(logits, self.temperature)
            if self.top_k is not None:
                logits = top_k_filter(logits, self.top_k)
            if self.top_p is not None:
                logits = top_p_filter(logits, self.top_p)
            token = sample(logits.softmax(dim=-1), self.generator)  # (B,)
        if self.max_bars is not None:
            new_bar = self.is_bar[token]  # (B,)
            stop = new_bar & (self.bars >= self.max_bars) & (mask[:, self.eos_id] == 0)
            token = torch.where(stop, self.eos_id, token)
            self.bars += new_bar & ~stop
        token = torch.where(self.finished, self.pad_id, token)
        self.finished |= token == self.eos_id
        if self.grammar is not None:
            self.state.copy_(self.next_state[self.state, token].clamp_min(0))
        if self.harmony is not None:
            self.harmony.update(token)
        if self.unique is not None:
            self.unique.update(token)
        self.pos += 1
        self.out.index_copy_(1, self.pos, token[:, None])
        self.token.copy_(token)

    def _beam_select(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One beam-search step over masked ``logits (B*K, V)``: keep, for each content row, the K best
        one-token extensions of its K hypotheses; reorder every per-row state tensor to follow them and
        return their tokens ``(B*K,)``."""
        K, V = self.beam_size, logits.shape[-1]
        if self.max_bars is not None:  # as greedy does, a bar that would start bar max_bars + 1 ends the piece:
            at_limit = (self.bars >= self.max_bars) & (mask[:, self.eos_id] == 0)  # (B*K,) its mass goes to EOS
            ends = torch.logaddexp(logits[:, self.eos_id], logits[:, self.is_bar].logsumexp(dim=-1))
            logits = logits.masked_fill(at_limit[:, None] & self.is_bar[None, :], float("-inf"))
            logits[:, self.eos_id] = torch.where(at_limit, ends, logits[:, self.eos_id])
        logp = torch.where(self.finished[:, None], self.finished_logp, logits.log_softmax(dim=-1))  # (B*K, V)
        total = (self.score[:, None] + logp).view(-1, K * V)  # (B, K*V)
        best, flat = total.topk(K, dim=-1)  # (B, K) each, best first
        parent = (torch.arange(len(total), device=self.device)[:, None] * K + flat // V).view(-1)  # (B*K,)
        self._reorder(parent)
        self.score.copy_(best.view(-1))
        self.finished |= self.score == float("-inf")  # fewer than K possible extensions: the rest are dead ends
        return (flat % V).view(-1)

    def _reorder(self, rows: torch.Tensor) -> None:
        """Row ``i`` of every per-row state becomes row ``rows[i]``'s (beams of one content row only trade
        among themselves, so the content, style and cross-attention cache need no move)."""
        filled = self.n + 1  # self-attention positions written so far (this step's included)
        tensors = [self.out, self.finished, self.bars]
        tensors += [self.state] if self.grammar is not None else []
        tensors += self.harmony.tensors() if self.harmony is not None else []
        tensors += self.unique.tensors() if self.unique is not None else []
        tensors += [t for t in (self.cache.grid_bar, self.cache.grid_key) if t is not None]
        for tensor in tensors:
            tensor.copy_(tensor[rows])
        for layer in self.cache.self_k + self.cache.self_v:  # (B*K, H, L, hs): only the filled prefix moves
            layer[:, :, :filled] = layer[rows, :, :filled]

    def _capture(self) -> None:
        """Record one step as a CUDA graph (after warm-up steps on a side stream, as CUDA requires).

        Tries the compiled step first (if any), then the eager one; if neither captures, decodes
        eagerly and warns why.
        """
        candidates = [(self._cached_step, "eager")]
        if self._step_fn is not None:
            candidates.insert(0, (self._step_fn, self.mode))
        errors = []
        for step_fn, mode in candidates:
            try:
                stream = torch.cuda.Stream(self.device)
                stream.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(stream):
                    for _ in range(min(2, self.max_new_tokens)):  # compiles (if asked), sets up cuBLAS
                        step_fn()
                torch.cuda.current_stream(self.device).wait_stream(stream)
                self.reset()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    step_fn()
            except Exception as err:  # try the next candidate, and say why in the end
                errors.append(f"{mode}: {type(err).__name__}: {err}")
                continue
            self._graph, self.mode = graph, f"{mode}+cuda_graph"
            break
        else:
            self._step_fn, self.mode = None, "eager"
        if errors:
            warnings.warn(f"Decoder: CUDA graph capture failed for {'; '.join(errors)}; running {self.mode}")
        self.reset()


@torch.no_grad()
def generate(model: MusicStyleTransformer, content_ids: Any, style_mel: Any, *, max_new_tokens: int | None = None,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             grammar: Any = None, bar_ids: Sequence[int] = (), max_bars: int | None = None,
             use_cache: bool = True, cuda_graph: bool | None = None, compile: bool | dict[str, Any] = False,
             generator: torch.Generator | None = None, bos_id: int = BOS, eos_id: int = EOS,
             harmony: HarmonyLock | None = None, beam_size: int = 1,
             length_penalty: float = 0.0, unique_notes: UniqueNotes | None = None) -> list[list[int]]:
    """Generate a batch; returns one ``[BOS, ..., EOS]`` id list per content row (see :class:`Decoder`).

        >>> rows = generate(model, [ids_a, ids_b], mel, max_new_tokens=256, temperature=0.9, top_k=40,
        ...                 grammar=tokenizer.grammar, bar_ids=tokenizer.bar_ids, max_bars=8)
    """
    was_training = model.training
    try:
        decoder = Decoder(model, content_ids, style_mel, max_new_tokens=max_new_tokens, temperature=temperature,
                          top_k=top_k, top_p=top_p, grammar=grammar, bar_ids=bar_ids, max_bars=max_bars,
                          use_cache=use_cache, cuda_graph=cuda_graph, compile=compile, generator=generator,
                          bos_id=bos_id, eos_id=eos_id, harmony=harmony, beam_size=beam_size,
                          length_penalty=length_penalty, unique_notes=unique_notes)
        decoder.run()
        return decoder.sequences()
    finally:
        model.train(was_training)


# ------------------------------------------------------------------------------ streaming
class StyleStream:
    """Bar-by-bar generation of one piece; the style reference can be switched between bars.

    Wraps a batch-1 :class:`Decoder` made with ``bar_ids`` (or use :func:`stream`). Iterating yields
    the token ids of each finished bar (a bar starts at a bar token). ``send(mel)`` (or
    ``set_style(mel)`` then ``next``) re-encodes the content with the new reference; the piece
    continues from where it is, in the new style. ``last_switch`` holds the measured latency of the
    last switch in ms: ``encode`` (style encoder + content encoder + cross-attention cache),
    ``first_token`` (new reference -> first token in the new style on the host) and ``first_bar``
    (-> the end of the first bar in the new style). ``ids`` holds every token so far.

        >>> live = stream(model, content_ids, mel_a, bar_ids=tokenizer.bar_ids, grammar=tokenizer.grammar)
        >>> bar_1 = next(live)
        >>> bar_2 = live.send(mel_b)       # bar 2 in the style of mel_b  # doctest: +SKIP
        >>> live.last_switch  # doctest: +SKIP
        {'encode': 4.1, 'first_token': 4.9, 'first_bar': 61.0}
    """

    def __init__(self, decoder: Decoder) -> None:
        if not decoder.bar_ids or len(decoder.content) != 1:
            raise ValueError("StyleStream: needs a Decoder for one piece (batch 1) made with bar_ids (the bar "
                             f"token ids); got batch {len(decoder.content)}, bar_ids {decoder.bar_ids}")
        self.decoder = decoder
        self.bar_ids = set(decoder.bar_ids)
        self.ids: list[int] = decoder.out[0, : decoder.n + 1].tolist()
        self.last_switch: dict[str, float] | None = None
        self._bar: list[int] = []  # tokens of the bar in progress
        self._switch: dict[str, float] | None = None  # the switch being measured
        self.done = False

    def __iter__(self) -> "StyleStream":
        return self

    def __next__(self) -> list[int]:
        decoder = self.decoder
        while not self.done:
            if decoder.n >= decoder.max_new_tokens:
                self.done = True
                break
            decoder.step()
            token = int(decoder.token[0])  # host sync: a stream hands tokens over one at a time
            self.ids.append(token)
            if self._switch is not None and "first_token" not in self._switch:
                self._switch["first_token"] = self._ms_since_switch()
            if token == decoder.eos_id:
                self.done = True
                break
            if token in self.bar_ids and self._bar:
                bar, self._bar = self._bar, [token]
                return self._bar_done(bar)
            self._bar.append(token)
        if self._bar:
            bar, self._bar = self._bar, []
            return self._bar_done(bar)
        raise StopIteration

    def send(self, style_mel: Any) -> list[int]:
        """Switch to a new style reference and return the next bar (the first in the new style)."""
        self.set_style(style_mel)
        return next(self)

    def set_style(self, style_mel: Any) -> None:
        """Switch the style reference; the next generated token is in the new style."""
        t0 = time.perf_counter()
        self.decoder.set_style(style_mel)
        _sync(self.decoder.device)
        self._switch = {"t0": t0, "encode": (time.perf_counter() - t0) * 1e3}

    def sequence(self) -> list[int]:
        """Every token so far as a complete ``[BOS, ..., EOS]`` sequence (see :meth:`Decoder.complete`)."""
        return self.decoder.complete(list(self.ids))

    def _ms_since_switch(self) -> float:
        return (time.perf_counter() - self._switch["t0"]) * 1e3

    def _bar_done(self, bar: list[int]) -> list[int]:
        if self._switch is not None:
            self._switch["first_bar"] = self._ms_since_switch()
            self._switch.setdefault("first_token", self._switch["first_bar"])
            self.last_switch = {k: round(v, 3) for k, v in self._switch.items() if k != "t0"}
            self._switch = None
        return bar


def stream(model: MusicStyleTransformer, content_ids: Any, style_mel: Any, *, bar_ids: Sequence[int],
           max_new_tokens: int | None = None, **options: Any) -> StyleStream:
    """A :class:`StyleStream` over one piece; ``options`` as for :class:`Decoder` (sampling, grammar, ...).

    ``max_new_tokens`` defaults to the model's ``max_len - 1``.
    """
    max_new_tokens = max_new_tokens or model.config.max_len - 1
    return StyleStream(Decoder(model, content_ids, style_mel, bar_ids=bar_ids, max_new_tokens=max_new_tokens,
                               **options))


# ------------------------------------------------------------------------------ one call
def token_budget(n_content_tokens: int, max_len: int) -> int:
    """How many tokens a transfer may generate for a window of ``n_content_tokens`` content tokens:
    ``2 * n + 256`` (room for a style that adds notes to the content), at most the model's ``max_len - 1``.
    One rule for every caller (``transfer``, the live session, the attention explorer).

        >>> token_budget(100, 4096), token_budget(3000, 4096)
        (456, 4095)
    """
    return min(max_len - 1, 2 * n_content_tokens + 256)


def prepare_content(tokenizer: Any, content: Any, content_style: str | None = "straight"):
    """The content as the model reads it (what :func:`transfer` does after :func:`~mstoolkit.intake.intake`):
    loaded (an :class:`~mstoolkit.intake.Intake`, whose ``piece`` is taken, or anything ``load_piece``
    takes, read as it is), quantized to the tokenizer's grid and bins, and rendered in
    ``content_style`` (None: as given). See :func:`transfer` for why.

        >>> prepare_content(tokenizer, piece).time_signatures == piece.time_signatures
        True
    """
    from mstoolkit.intake import Intake
    from mstoolkit.piece import load_piece

    piece = tokenizer.quantize(content.piece if isinstance(content, Intake) else load_piece(content))
    if content_style is not None:
        from mstoolkit.styles import render_style

        piece = tokenizer.quantize(render_style(piece, content_style))  # as StyleBench shows content
    return piece


@torch.no_grad()
def transfer(model: MusicStyleTransformer, tokenizer: Any, content: Any, reference: Any, *,
             window_bars: int | None = 4, max_bars: int | None = None, max_new_tokens: int | None = None,
             temperature: float = TRANSFER_TEMPERATURE, top_k: int | None = None, top_p: float | None = None,
             constrained: bool = True, seed: int | None = None, content_style: str | None = "straight",
             batch_windows: int = 16, progress: bool = False, harmony_window: float | None = None,
             beam_size: int = 1, unique_notes: bool = True):
    """Re-write ``content`` in the style of ``reference``; returns a :class:`~mstoolkit.piece.Piece`.

    ``content``: an :class:`~mstoolkit.intake.Intake`, or anything ``load_piece`` takes (path, MIDI
    bytes, Piece, pretty_midi, music21), which :func:`~mstoolkit.intake.intake` reads first with its
    defaults: drum tracks are kept aside and laid back, unchanged, over the output (the model never
    saw drums); every pitched track is content; a performance without a reliable grid gets its beats
    estimated. Its one-line account is ``intake(content).account`` (call ``intake`` yourself to see
    it or to choose other options, and pass the ``Intake``).
    ``content_style``: the StyleBench style the content is first rendered in, because the model only
    ever read content rendered in one of its styles: a raw MIDI file's own instruments and dynamics
    are outside what it learned (the demo model on bwv66.6, swing: note F1 0.46 from the raw file,
    0.75 from its "straight" rendering). ``"straight"`` (default) keeps every note, quantized to
    sixteenths, legato, strings; ``None`` uses the content as given (it already is a rendering).
    ``reference``: a Piece or MIDI path (rendered to audio), an audio array or audio file path, or a
    precomputed log-mel ``(n_mels, frames)`` (:func:`mstoolkit.audio.mel`).

    The content is cut into windows of ``window_bars`` bars on its own bar lines (StyleBench's
    training windows are 4 bars; pickups, odd meters and meter changes included), generated
    ``batch_windows`` windows at a time (so memory stays bounded for a long piece; ``progress=True``
    shows a tqdm bar over the windows), and the results are laid end to end on the content's bar
    lines, with the content's tempo map (as read, not rounded to the tokenizer's tempo bins) and time
    signatures (``window_bars=None``: the whole piece in one pass). Every batch is padded to the
    longest window of the piece, so greedy results do not depend on ``batch_windows``; sampled ones
    (``temperature > 0``) are reproducible with ``seed`` for a given ``batch_windows``.
    ``max_bars`` keeps only the first bars of the content. Decoding is
    greedy by default (``temperature=0``: see ``config.TRANSFER_TEMPERATURE`` for why); ``temperature > 0``
    samples (with ``top_k``/``top_p``). With
    ``constrained`` (default) decoding follows ``tokenizer.grammar``, so every window decodes. At most
    :func:`token_budget` tokens per window unless ``max_new_tokens`` says otherwise; ``seed`` fixes
    the sampling. ``harmony_window=W`` (beats) keeps the content's harmony: a note may only take a pitch
    class the content sounds within ``W`` beats of it (:class:`~mstoolkit.harmony.HarmonyLock`; None: off).
    ``beam_size=K > 1`` (greedy only) keeps K hypotheses per window (beam search, see :class:`Decoder`).
    ``unique_notes`` (default) forbids an instrument to start one pitch twice at one onset
    (:class:`~mstoolkit.unique_notes.UniqueNotes`: such a repeat sounds as one note, and a greedy loop of
    them can eat a window's token budget); ``False`` decodes as before 2026-12-02.

        >>> swing = transfer(model, tokenizer, "chorale.mid", swing_piece, temperature=0.9, top_p=0.95)  # doctest: +SKIP
    """
    from mstoolkit.intake import intake
    from mstoolkit.piece import Piece

    cfg = model.config
    if tokenizer.vocab_size != cfg.vocab_size:
        raise UserError(f"transfer: tokenizer vocab_size {tokenizer.vocab_size} != model vocab_size {cfg.vocab_size}")
    if window_bars is not None and window_bars < 1:
        raise UserError(f"transfer: window_bars must be >= 1 or None, got {window_bars}")
    if max_bars is not None and max_bars < 1:
        raise UserError(f"transfer: max_bars must be >= 1 or None, got {max_bars}")
    if batch_windows < 1:
        raise UserError(f"transfer: batch_windows must be >= 1, got {batch_windows}")
    if harmony_window is not None and not harmony_window >= 0:
        raise UserError(f"transfer: harmony_window must be >= 0 beats or None, got {harmony_window}")
    harmony = HarmonyLock(tokenizer, harmony_window) if harmony_window is not None else None
    took = intake(content)  # an Intake is returned as is
    piece = prepare_content(tokenizer, took, content_style)
    bar_starts = piece.bar_starts()  # tick of each bar of the content
    n_bars = len(bar_starts) if max_bars is None else min(max_bars, len(bar_starts))
    size = n_bars if window_bars is None else window_bars
    firsts = list(range(0, n_bars, size))  # first bar of each window
    windows = [piece.slice_bars(first, min(size, n_bars - first)) for first in firsts]
    ids = [tokenizer.encode(window) for window in windows]
    longest = max(len(row) for row in ids)
    if longest > cfg.max_len:
        raise UserError(f"transfer: a window of the content is {longest} tokens, over the model's max_len "
                         f"{cfg.max_len}; use a smaller window_bars")
    mel = reference_mel(reference, n_mels=cfg.n_mels)
    if max_new_tokens is None:
        max_new_tokens = token_budget(longest, cfg.max_len)
    generator = None
    if seed is not None:
        generator = torch.Generator(model.target_emb.weight.device).manual_seed(seed)
    # Every batch padded to the piece's longest window: a window is decoded the same in any batch.
    content_ids = torch.full((len(ids), longest), cfg.pad_id, dtype=torch.long)  # (windows, longest)
    for i, row in enumerate(ids):
        content_ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    outputs: list[list[int]] = []
    unique = UniqueNotes(tokenizer) if unique_notes else None
    with _progress(len(ids), progress) as bar:
        for first in range(0, len(ids), batch_windows):
            outputs += generate(model, content_ids[first:first + batch_windows], mel, max_new_tokens=max_new_tokens,
                                temperature=temperature, top_k=top_k, top_p=top_p,
                                grammar=tokenizer.grammar if constrained else None, bar_ids=tokenizer.bar_ids,
                                max_bars=size, generator=generator, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id,
                                harmony=harmony, beam_size=beam_size, unique_notes=unique)
            bar.update(min(batch_windows, len(ids) - first))
    edges = piece.bar_starts(piece.end_tick + 4 * 192)  # bar lines, past the last bar too
    notes = []
    kept_drums = took.drums is not None  # then the file's drums are the drums: any the model writes are dropped
    for first, out in zip(firsts, outputs):
        offset, limit = edges[first], edges[min(first + size, n_bars)]  # the window's span in content ticks
        for note in tokenizer.decode(out).notes:
            start = note.start + offset
            if start < limit and not (kept_drums and note.is_drum):  # a window only fills its own bars
                notes.append(dataclasses.replace(note, start=start, duration=min(note.duration, limit - start)))
    # Kept drums go back over their whole length, unless max_bars cut the piece short.
    drums_end = took.drums.end_tick if took.drums is not None and max_bars is None else 0
    end = max(edges[n_bars], drums_end)
    shape = took.piece.slice_ticks(0, end)  # the tempo map as read, for the bars kept
    sigs = piece.slice_ticks(0, end).time_signatures  # as the tokenizer wrote them (same bar lengths)
    out = Piece(notes, shape.tempos, sigs, piece.key, piece.name)
    return took.with_drums(out, until=end)


def _progress(total: int, show: bool):
    """A tqdm bar over ``total`` windows (plain text, so nothing here imports IPython), or a no-op."""
    from tqdm import tqdm

    return tqdm(total=total, disable=not show, unit="window", desc="transfer")


def reference_mel(reference: Any, n_mels: int = 128) -> np.ndarray:
    """The log-mel ``(n_mels, frames)`` of a style reference: a Piece or ``.mid`` path (rendered), an
    audio file path, a mono audio array ``(samples,)``, or a mel ``(n_mels, frames)`` returned as is.
    Audio (a file or an array) is first brought to the level every training reference had
    (:func:`mstoolkit.audio.peak_normalize`: peak 1.0, silence left alone).

        >>> reference_mel(np.zeros(22050)).shape
        (128, 44)
    """
    from mstoolkit import audio
    from mstoolkit.piece import Piece, load_piece

    if isinstance(reference, Piece):
        return audio.mel(audio.render(reference), n_mels=n_mels)
    if isinstance(reference, (str, os.PathLike)):
        path = os.fspath(reference)
        if path.lower().endswith((".mid", ".midi")):
            return audio.mel(audio.render(load_piece(path)), n_mels=n_mels)
        return audio.mel(audio.peak_normalize(audio.load_audio(path)), n_mels=n_mels)
    array = reference.detach().cpu().numpy() if isinstance(reference, torch.Tensor) else np.asarray(reference)
    if array.ndim == 1:
        return audio.mel(audio.peak_normalize(array), n_mels=n_mels)
    if array.ndim == 2 and array.shape[0] == n_mels:
        return array.astype(np.float32)
    raise UserError(f"reference: expected a Piece, a path, mono audio (samples,) or a mel ({n_mels}, frames), "
                     f"got an array of shape {array.shape}")


# ------------------------------------------------------------------------------ input helpers
def _as_ids(ids: Any, pad_id: int, device: torch.device) -> torch.Tensor:
    """Content ids as a ``(B, S)`` long tensor: from a tensor, one id list, or a list of id lists (padded)."""
    if isinstance(ids, torch.Tensor):
        out = ids[None] if ids.dim() == 1 else ids
    else:
        rows = [list(r) for r in ids] if len(ids) and not np.isscalar(ids[0]) else [list(ids)]
        if not rows or min(len(r) for r in rows) == 0:
            raise ValueError("content_ids: expected non-empty id sequences")
        out = torch.full((len(rows), max(len(r) for r in rows)), pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    if out.dim() != 2 or out.shape[1] == 0 or out.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"content_ids: expected integer ids (B, S), got {tuple(out.shape)} {out.dtype}")
    return out.to(device=device, dtype=torch.long)


def _as_mel(mel: Any, batch: int, n_mels: int, device: torch.device) -> torch.Tensor:
    """A style mel as ``(batch, n_mels, frames)`` float tensor (a single mel is shared by the batch)."""
    mel = torch.as_tensor(np.asarray(mel) if not isinstance(mel, torch.Tensor) else mel, device=device).float()
    if mel.dim() == 2:
        mel = mel[None]
    if mel.dim() != 3 or mel.shape[1] != n_mels or mel.shape[0] not in (1, batch):
        raise ValueError(f"style_mel: expected ({n_mels}, frames) or ({batch}, {n_mels}, frames), "
                         f"got {tuple(mel.shape)}")
    return mel.expand(batch, -1, -1)  # (B, n_mels, frames)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
