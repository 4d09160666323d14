"""The style-transfer model: config, style encoder (CNN over log-mel) and the encoder-decoder Transformer.

``target = f(content, style)``: the content tokens are embedded (``d_content`` wide) and each is
concatenated with the style vector of a reference mel spectrogram (``d_style`` wide), as in the seed
(256 + 128 = 384); an encoder reads them and an autoregressive decoder writes the piece again in the
new style, reading the encoder through cross-attention.

    >>> model = MusicStyleTransformer(ModelConfig.preset("tiny", vocab_size=777))
    >>> logits, loss = model(content_ids, style_mel, target_ids[:, :-1], target_ids[:, 1:])

Choices, for a reader who wants to change them:

* **Pre-LN blocks** (LayerNorm before attention / MLP, a residual around each): trains without warm-up
  tricks at any depth; a final LayerNorm closes each stack.
* **Rotary positions** (RoPE) in the encoder's and the decoder's self-attention, none in cross-attention.
  Music is periodic in bars and beats, and RoPE makes attention depend on the *distance* between
  tokens, so a pattern learned in bar 2 applies in bar 30; there is no learned table to outgrow
  (``max_len`` only sizes the cos/sin buffers), and it costs no parameters. Cross-attention gets no
  positions: content and target are different sequences whose lengths differ.
* **Tied output head**: the logits use the decoder's token embedding matrix. Input and output tokens
  of the decoder are the same vocabulary, and tying regularises small-data training (StyleBench).
* **Attention** goes through :func:`attention`: ``F.scaled_dot_product_attention`` (flash / memory-
  efficient kernels) unless attention maps were asked for (``return_attn=True``), in which case the
  same layers compute it by hand and keep the ``(B, H, T_q, T_k)`` weights.
* **Generation** uses :meth:`MusicStyleTransformer.decode_step` over a static :class:`KVCache` (fixed
  shapes, positions as a device tensor), so one step can be captured as a CUDA graph
  (see :mod:`mstoolkit.generate`).

Imports only torch (plus :mod:`mstoolkit.losses`); checkpoints live in :mod:`mstoolkit.checkpoint`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from mstoolkit.config import MUSICAL_BAR_TICKS
from mstoolkit.losses import token_cross_entropy

CONDITIONINGS = ("concat", "adaln")

# Named sizes. "debug": ~0.1M parameters (mostly embeddings), for tests. "tiny": trains on a 2-core laptop CPU
# in minutes (tutorials). "base": the seed's sizes (256 + 128 = 384 wide, 8 heads, 6 + 6 layers,
# MLP 2048 wide as nn.Transformer's default; 30.1M parameters against the seed's 30.2M).
PRESETS: dict[str, dict[str, Any]] = {
    "debug": dict(d_content=32, d_style=16, n_heads=2, n_enc_layers=1, n_dec_layers=1, max_len=512,
                  style_channels=(8, 16, 16)),
    "tiny": dict(d_content=64, d_style=32, n_heads=4, n_enc_layers=2, n_dec_layers=2, dropout=0.1,
                 style_channels=(16, 32, 64)),
    "base": dict(d_content=256, d_style=128, n_heads=8, n_enc_layers=6, n_dec_layers=6, d_ff=2048),
}


@dataclass
class ModelConfig:
    """Hyper-parameters of :class:`MusicStyleTransformer` (JSON-friendly: ``to_dict`` / ``from_dict``).

        >>> ModelConfig.preset("base", vocab_size=777).d_model
        384
    """

    vocab_size: int = 512  # set to tokenizer.vocab_size
    d_content: int = 256  # content token embedding width
    d_style: int = 128  # style vector width
    n_heads: int = 8  # attention heads per layer
    n_enc_layers: int = 6  # content encoder layers
    n_dec_layers: int = 6  # target decoder layers
    max_len: int = 4096  # longest content or target sequence (sizes the rotary tables)
    dropout: float = 0.0  # dropout rate on attention weights and residual branches (training only)
    n_mels: int = 128  # mel bands of the style reference (mstoolkit.audio.mel default)
    conditioning: str = "concat"  # "concat": [content, style] at the encoder input (the seed);
    #                               "adaln": style -> scale/shift of every encoder LayerNorm
    d_ff: int | None = None  # MLP hidden width; None: 4 * d_model
    style_channels: tuple[int, ...] = (32, 64, 128)  # CNN channels of the style encoder (the seed's)
    pad_id: int = 0  # id of the padding token (ignored by attention and the loss)
    activation_checkpointing: bool = False  # recompute block activations in backward (long sequences)
    # Beat grid (off while n_positions is 0): learned embeddings of each token's bar number (modulo
    # grid_bars) and its position in the bar, read from the ids and added to the content and target
    # embeddings, so cross-attention can find "the same bar and beat" in the content directly instead of
    # counting tokens. The ids come from the tokenizer: ``ModelConfig.beat_grid_from(tokenizer)``.
    bar_id: int = -1  # id of the Bar token
    position_id: int = -1  # id of Position_0 (Position_k is position_id + k)
    n_positions: int = 0  # number of Position tokens; 0: no beat grid
    grid_bars: int = 16  # bar-number embeddings (a window's bars count 1, 2, ...; longer pieces wrap around)
    # Cross-attention bias by musical time (needs the beat grid): head h adds -slope_h * |t_q - t_k| (in
    # quarter notes) to its scores, so from the first step a target token looks at the content notes that
    # sound at the same time (ALiBi, with musical time instead of token distance). Slopes 4^-h, and 0 for
    # the last head, which keeps a view of the whole content.
    time_bias: bool = False
    # Copy head (pointer-generator, needs the beat grid): the next token is either generated from the
    # vocabulary or copied from one of the content's Pitch tokens, chosen by a pointer attention over them
    # (see CopyHead). The Pitch ids come from the tokenizer too (``beat_grid_from``).
    copy: bool = False
    # ... and move the copied pitch by whole octaves, up to this many either way (0: copy it as it is). Styles
    # re-voice: a stride bass drops an octave, a waltz lifts its chords; so a target pitch is often a content
    # pitch 12 semitones away, which a plain copy cannot reach.
    copy_octaves: int = 0
    pitch_id: int = -1  # id of Pitch_<lowest pitch>
    n_pitches: int = 0  # number of Pitch tokens (Pitch_k is pitch_id + k - lowest pitch)
    # Pitch hints (needs the beat grid; see PitchHints): where the next token must be a Pitch (after a Program
    # token), add to each pitch's logit a learned, state-dependent weighting of what the content plays around
    # the current musical time: which pitches, the lowest and the highest, and an octave either way.
    # The Program and Duration ids (for the content notes' lengths) come from the tokenizer.
    pitch_hints: bool = False
    program_id: int = -1  # id of the first Program token
    n_programs: int = 0  # number of Program tokens
    duration_id: int = -1  # id of Duration_1 (Duration_d is duration_id + d - 1)
    n_durations: int = 0  # number of Duration tokens

    def __post_init__(self) -> None:
        self.style_channels = tuple(self.style_channels)  # JSON gives a list
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"ModelConfig.conditioning: {self.conditioning!r} is not one of {CONDITIONINGS}")
        for name in ("vocab_size", "d_content", "d_style", "n_heads", "n_enc_layers", "n_dec_layers",
                     "max_len", "n_mels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{name}: expected a positive int, got {value!r}")
        if self.d_model % self.n_heads or self.head_dim % 2:
            raise ValueError(f"ModelConfig: d_model {self.d_model} must split into {self.n_heads} heads of an "
                             "even size (rotary embeddings rotate pairs of dimensions)")
        if self.d_ff is not None and (not isinstance(self.d_ff, int) or self.d_ff < 1):
            raise ValueError(f"ModelConfig.d_ff: expected a positive int or None, got {self.d_ff!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout: expected 0 <= dropout < 1, got {self.dropout!r}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"ModelConfig.pad_id: {self.pad_id} is not an id below vocab_size {self.vocab_size}")
        if self.n_positions:
            if not (0 <= self.bar_id < self.vocab_size and 0 <= self.position_id
                    and self.position_id + self.n_positions <= self.vocab_size):
                raise ValueError(f"ModelConfig: the beat grid needs bar_id and position_id .. position_id + "
                                 f"n_positions inside the vocabulary ({self.vocab_size}), got bar_id={self.bar_id}, "
                                 f"position_id={self.position_id}, n_positions={self.n_positions}")
            if self.grid_bars < 1:
                raise ValueError(f"ModelConfig.grid_bars: expected a positive int, got {self.grid_bars!r}")
        else:
            for name in ("time_bias", "copy", "pitch_hints"):
                if getattr(self, name):
                    raise ValueError(f"ModelConfig.{name} needs the beat grid (bar_id, position_id, n_positions: "
                                     "ModelConfig.beat_grid_from(tokenizer))")
        if not isinstance(self.copy_octaves, int) or not 0 <= self.copy_octaves <= 4:
            raise ValueError(f"ModelConfig.copy_octaves: expected an int in 0..4, got {self.copy_octaves!r}")
        if self.copy_octaves and not self.copy:
            raise ValueError("ModelConfig.copy_octaves moves what the copy head copies: it needs copy=True")
        if self.copy and not (self.n_pitches > 0 and 0 <= self.pitch_id
                              and self.pitch_id + self.n_pitches <= self.vocab_size):
            raise ValueError(f"ModelConfig.copy needs the Pitch token ids inside the vocabulary ({self.vocab_size}): "
                             f"pitch_id={self.pitch_id}, n_pitches={self.n_pitches} "
                             "(ModelConfig.beat_grid_from(tokenizer))")
        if self.pitch_hints:
            spans = dict(pitch=(self.pitch_id, self.n_pitches), program=(self.program_id, self.n_programs),
                         duration=(self.duration_id, self.n_durations))
            for name, (first, count) in spans.items():
                if not (count > 0 and 0 <= first and first + count <= self.vocab_size):
                    raise ValueError(f"ModelConfig.pitch_hints needs the {name} token ids inside the vocabulary "
                                     f"({self.vocab_size}): {name}_id={first}, n_{name}s={count} "
                                     "(ModelConfig.beat_grid_from(tokenizer))")

    @property
    def beat_grid(self) -> bool:
        return self.n_positions > 0

    @staticmethod
    def beat_grid_from(tokenizer: Any) -> dict[str, int]:
        """The token-id fields for a REMI tokenizer: its ``Bar`` and ``Position_k`` tokens (the beat grid)
        and its ``Pitch_p`` tokens (what the copy head may copy), ``Program`` and ``Duration_d`` tokens
        (where a pitch comes next, and how long content notes last: pitch hints).

            >>> cfg = ModelConfig.preset("tiny", vocab_size=777, **ModelConfig.beat_grid_from(RemiTokenizer()))
        """
        types = list(tokenizer.token_types)
        return dict(bar_id=tokenizer.vocab["Bar"], position_id=tokenizer.vocab["Position_0"],
                    n_positions=types.count("Position"), pitch_id=types.index("Pitch"), n_pitches=types.count("Pitch"),
                    program_id=types.index("Program"), n_programs=types.count("Program"),
                    duration_id=types.index("Duration"), n_durations=types.count("Duration"))

    @property
    def d_model(self) -> int:
        """Transformer width: content + style (the seed's 256 + 128 = 384)."""
        return self.d_content + self.d_style

    @property
    def ffn_dim(self) -> int:
        return self.d_ff or 4 * self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ModelConfig":
        """A named size (``"debug"``, ``"tiny"``, ``"base"``) with optional field overrides."""
        if name not in PRESETS:
            raise ValueError(f"ModelConfig.preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["style_channels"] = list(self.style_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError (a config from another model)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"ModelConfig: unknown field(s) {unknown}")
        return cls(**data)


# ------------------------------------------------------------------------------------ attention
@dataclass
class AttentionMaps:
    """Per-layer attention weights, each ``(B, H, T_q, T_k)``, from ``forward(..., return_attn=True)``."""

    encoder: list[torch.Tensor] = field(default_factory=list)  # content self-attention, T_q = T_k = S
    decoder_self: list[torch.Tensor] = field(default_factory=list)  # causal target self-attention, T x T
    cross: list[torch.Tensor] = field(default_factory=list)  # target -> content, T x S
    # copy models only: the pointer over the content's Pitch tokens, one "head" (B, 1, T, S), and the
    # probability of copying rather than generating (B, T) at every target position
    copy: list[torch.Tensor] = field(default_factory=list)
    copy_prob: torch.Tensor | None = None
    # pitch-hint models only: the logit bias each pitch got from the content's notes (B, T, n_pitches), 0 where
    # no pitch comes next
    pitch_hint: torch.Tensor | None = None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, mask: torch.Tensor | None = None,
              causal: bool = False, dropout: float = 0.0, maps: list | None = None) -> torch.Tensor:
    """Scaled dot-product attention over ``(B, H, T, hs)`` tensors -> ``(B, H, T_q, hs)``.

    ``mask``: broadcastable to ``(B, H, T_q, T_k)``; bool (True where attending is allowed) or an
    additive float bias (0 / -inf).
    With ``maps`` (a list) the weights are computed by hand and appended there; otherwise
    ``F.scaled_dot_product_attention`` runs and no weights exist.
    """
    if maps is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)
    return _manual_attention(q, k, v, mask, causal, dropout, maps)


def _manual_attention(q, k, v, mask, causal, dropout, maps):
    """The same computation as SDPA, written out so the weights can be kept."""
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (B, H, T_q, T_k)
    if causal:
        t_q, t_k = att.shape[-2:]
        keep = torch.ones(t_q, t_k, dtype=torch.bool, device=att.device).tril(t_k - t_q)  # (T_q, T_k)
        att = att.masked_fill(~keep, float("-inf"))
    if mask is not None:
        att = att.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else att + mask
    att = att.softmax(dim=-1)
    maps.append(att.detach())
    return F.dropout(att, dropout) @ v  # (B, H, T_q, hs)


def beat_grid_indices(ids: torch.Tensor, cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Bar number and position-in-bar index of every token of ``ids (B, T)``.

    The bar number counts the Bar tokens so far (0 before the first). The position index is 1 + the
    tick of the bar's latest Position token (0 from the Bar token until the first Position): REMI
    positions only grow inside a bar, so a running maximum of ``bar * stride + position`` forward-fills
    them. Returns two ``(B, T)`` long tensors; no host synchronisation.
    """
    bar = ids.eq(cfg.bar_id).long().cumsum(1)  # (B, T)
    key = _grid_key(ids, bar, cfg)
    stride = cfg.n_positions + 1
    position = (key.cummax(1).values - bar * stride).clamp(min=0)  # (B, T)
    return bar, position


def musical_time(bar: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """A token's time in ticks from its bar count and position index (every bar counted as 4/4: content
    and target share their bar lines, so equal (bar, position) still give equal times)."""
    return bar * MUSICAL_BAR_TICKS + (position - 1).clamp(min=0)


def time_bias_slopes(n_heads: int) -> torch.Tensor:
    """Per-head slopes ``(H,)`` per tick: 4^-h per quarter note, 0 for the last head."""
    slopes = 4.0 ** -torch.arange(n_heads, dtype=torch.float32) / 12.0
    if n_heads > 1:
        slopes[-1] = 0.0
    return slopes


def _grid_key(ids: torch.Tensor, bar: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """``bar * stride + 1 + tick`` at Position tokens, ``bar * stride`` at Bar tokens, -1 elsewhere."""
    stride = cfg.n_positions + 1
    value = ids - cfg.position_id + 1  # 1 + tick at Position tokens
    is_position = (value >= 1) & (value <= cfg.n_positions)
    key = torch.where(ids.eq(cfg.bar_id), bar * stride, torch.full_like(ids, -1))
    return torch.where(is_position, bar * stride + value, key)


class BeatGridEmbedding(nn.Module):
    """Bar-number + position-in-bar embedding ``(B, T) ids -> (B, T, width)`` (see ModelConfig)."""

    def __init__(self, cfg: ModelConfig, width: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.bar = nn.Embedding(cfg.grid_bars, width)
        self.position = nn.Embedding(cfg.n_positions + 1, width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        bar, position = beat_grid_indices(ids, self.cfg)
        return self.bar(bar % self.cfg.grid_bars) + self.position(position)  # (B, T, width)

    def step(self, token: torch.Tensor, bar: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Embedding of one new token ``(B,)``, updating the running ``bar``/``key`` ``(B,)`` state in place."""
        bar.add_(token.eq(self.cfg.bar_id).long())
        torch.maximum(key, _grid_key(token, bar, self.cfg), out=key)
        position = (key - bar * (self.cfg.n_positions + 1)).clamp(min=0)
        return self.bar(bar % self.cfg.grid_bars) + self.position(position)  # (B, width)


def rope_tables(max_len: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary tables ``cos = [cos, cos]`` and ``sin = [-sin, sin]``, each ``(max_len, head_dim)``."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (hs/2,)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)  # (max_len, hs/2)
    cos, sin = angles.cos(), angles.sin()
    return torch.cat([cos, cos], dim=-1).float(), torch.cat([-sin, sin], dim=-1).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair ``(x[i], x[i + hs/2])`` of ``x (..., T, hs)`` by its angle (tables ``(T, hs)``).

    ``x * [cos, cos] + [x2, x1] * [-sin, sin] = [x1 cos - x2 sin, x2 cos + x1 sin]``: three kernels,
    and q and k are rotated in one call.
    """
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.addcmul(x * cos, x.roll(x.size(-1) // 2, dims=-1), sin)  # (..., T, hs)


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection and rotary positions."""

    def __init__(self, cfg: ModelConfig, causal: bool) -> None:
        super().__init__()
        self.n_heads, self.causal, self.dropout = cfg.n_heads, causal, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None,
                maps: list | None = None) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)  # (3, B, H, T, hs)
        q, k = apply_rope(qkv[:2], cos, sin)  # 2 x (B, H, T, hs)
        y = attention(q, k, qkv[2], mask=mask, causal=self.causal, dropout=self.dropout if self.training else 0.0,
                      maps=maps)  # (B, H, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)

    def step(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pos: torch.Tensor,
             k_cache: torch.Tensor, v_cache: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """One new token ``x (B, 1, C)`` at position ``pos`` (a ``(1,)`` long tensor).

        Its key and value are written into ``k_cache``/``v_cache`` ``(B, H, L, hs)`` at ``pos``;
        ``bias (1, 1, 1, L)`` is 0 at filled positions and -inf elsewhere.
        """
        B, _, C = x.shape
        qkv = self.qkv(x).view(B, 1, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)  # (3, B, H, 1, hs)
        q, k = apply_rope(qkv[:2], cos, sin)  # 2 x (B, H, 1, hs)
        k_cache.index_copy_(2, pos, k.to(k_cache.dtype))
        v_cache.index_copy_(2, pos, qkv[2].to(v_cache.dtype))
        y = F.scaled_dot_product_attention(q, k_cache, v_cache, attn_mask=bias)  # (B, H, 1, hs)
        return self.proj(y.transpose(1, 2).reshape(B, 1, C))  # (B, 1, C)


class CrossAttention(nn.Module):
    """Decoder -> encoder attention; keys and values come from the encoder output (the memory)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.q = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``memory (B, S, C)``, each ``(B, H, S, hs)``."""
        B, S, C = memory.shape
        kv = self.kv(memory).view(B, S, 2, self.n_heads, C // self.n_heads)  # (B, S, 2, H, hs)
        k, v = kv.permute(2, 0, 3, 1, 4)  # 2 x (B, H, S, hs)
        return k, v

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                maps: list | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q = self.q(x).view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2)  # (B, H, T, hs)
        y = attention(q, k, v, mask=mask, dropout=self.dropout if self.training else 0.0, maps=maps)  # (B, H, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.d_model, cfg.ffn_dim, bias=False)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(x), approximate="tanh")))


class Block(nn.Module):
    """Pre-LN block: ``x + SelfAttn(LN x)`` [``+ CrossAttn(LN x, memory)``] ``+ MLP(LN x)``.

    Encoder blocks (``decoder=False``) attend both ways; decoder blocks are causal and cross-attend.
    With ``adaln`` (encoder only) the style vector sets a per-example scale and shift after each
    LayerNorm (zero-initialised, so training starts from plain LayerNorm).
    """

    def __init__(self, cfg: ModelConfig, decoder: bool, adaln: bool = False) -> None:
        super().__init__()
        d = cfg.d_model
        self.ln1, self.attn = nn.LayerNorm(d), SelfAttention(cfg, causal=decoder)
        self.ln_cross = nn.LayerNorm(d) if decoder else None
        self.cross = CrossAttention(cfg) if decoder else None
        self.ln2, self.mlp = nn.LayerNorm(d), MLP(cfg)
        self.modulation = nn.Linear(cfg.d_style, 4 * d) if adaln else None
        self.drop = nn.Dropout(cfg.dropout)
        # GPT-2 init: residual output projections scaled down by the depth of their stack.
        depth = cfg.n_dec_layers if decoder else cfg.n_enc_layers
        for layer in (self.attn.proj, self.mlp.fc2) + ((self.cross.proj,) if decoder else ()):
            layer.init_std = 0.02 / math.sqrt(2 * depth)
        if adaln:
            self.modulation.init_std = 0.0

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None,
                memory: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None,
                style: torch.Tensor | None = None, self_maps: list | None = None,
                cross_maps: list | None = None) -> torch.Tensor:
        h1 = self.ln1(x)  # (B, T, C)
        if self.modulation is not None:
            shift1, scale1, shift2, scale2 = self.modulation(style)[:, None].chunk(4, dim=-1)  # 4 x (B, 1, C)
            h1 = h1 * (1 + scale1) + shift1
        x = x + self.drop(self.attn(h1, cos, sin, mask, self_maps))
        if self.cross is not None:
            k, v = self.cross.memory_kv(memory)  # 2 x (B, H, S, hs)
            x = x + self.drop(self.cross(self.ln_cross(x), k, v, memory_mask, cross_maps))
        h2 = self.ln2(x)
        if self.modulation is not None:
            h2 = h2 * (1 + scale2) + shift2
        return x + self.mlp(h2)

    def step(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pos: torch.Tensor, cache: "KVCache",
             layer: int, cross_bias: torch.Tensor) -> torch.Tensor:
        """Decoder block on one new token ``x (B, 1, C)``, reading and filling ``cache`` (see KVCache);
        ``cross_bias`` ``(B, 1 or H, 1, S)``: the additive cross-attention bias of this step."""
        x = x + self.attn.step(self.ln1(x), cos, sin, pos, cache.self_k[layer], cache.self_v[layer], cache.self_bias)
        x = x + self.cross(self.ln_cross(x), cache.cross_k[layer], cache.cross_v[layer], cross_bias)
        return x + self.mlp(self.ln2(x))


# ------------------------------------------------------------------------------------ copy head
class CopyHead(nn.Module):
    """Pointer-generator output (See et al. 2017): copy a content pitch, or generate from the vocabulary.

    ``p(v) = g * softmax(logits)(v) + (1 - g) * sum_{j: content_j = v} a_j``, where ``a (B, T, S)`` is a
    single-head pointer attention over the content's ``Pitch`` tokens (query: the decoder state; key: the
    encoder output; plus ``-slope * |t_q - t_k|``, a learned musical-time bias starting at one unit per
    quarter note, so it first looks at the notes sounding now) and ``g (B, T)`` a sigmoid gate on the
    decoder state. A style changes rhythm, register and texture, but most target pitches are content
    pitches: copying one is a choice among the few notes at hand, not among 128 pitches.

    With ``copy_octaves = K`` the copied note may also move by ``o`` octaves, ``-K <= o <= K``, with a
    probability ``m_o (B, T)`` from the decoder state (a softmax over the ``2K + 1`` moves, starting
    near "stay"): the pitch ``p`` gets ``sum_o m_o * (pointer mass on pitch p - 12 o)``.

        >>> log_p, pointer, copy_prob = head(hidden, logits, keys, bias, content_ids)  # (B, T, V), (B, T, S), (B, T)
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.query = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.key = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.gate = nn.Linear(cfg.d_model, 1)  # logit of generating (vs copying)
        self.slope = nn.Parameter(torch.tensor(math.log(math.e - 1.0)))  # softplus(slope) = 1 per quarter note
        self.octave = nn.Linear(cfg.d_model, 2 * cfg.copy_octaves + 1) if cfg.copy_octaves else None

    def reset_octave_prior(self) -> None:
        """Start the octave moves near "stay" (p ~ 0.9): a plain copy first, moves learned when they pay."""
        if self.octave is not None:
            with torch.no_grad():
                self.octave.bias.zero_()
                self.octave.bias[self.cfg.copy_octaves] = math.log(9.0 * 2 * self.cfg.copy_octaves)

    def bias(self, content_ids: torch.Tensor, t_query: torch.Tensor, t_content: torch.Tensor) -> torch.Tensor:
        """Additive pointer bias ``(B, T, S)``: the time term at content Pitch tokens, -inf elsewhere (incl.
        padding). ``content_ids (B, S)``; times in ticks: ``t_query (B, T)``, ``t_content (B, S)``."""
        is_pitch = (content_ids >= self.cfg.pitch_id) & (content_ids < self.cfg.pitch_id + self.cfg.n_pitches)
        slope = F.softplus(self.slope) / 12.0  # per tick
        bias = -slope * (t_query[:, :, None] - t_content[:, None, :]).abs().to(slope.dtype)  # (B, T, S)
        return bias.masked_fill(~is_pitch[:, None, :], float("-inf"))

    def forward(self, hidden: torch.Tensor, logits: torch.Tensor, keys: torch.Tensor, bias: torch.Tensor,
                content_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``hidden (B, T, C)``, vocabulary ``logits (B, T, V)``, pointer ``keys (B, S, C)`` (``key(memory)``),
        ``bias (B, T, S)`` -> (log-probabilities ``(B, T, V)``, pointer ``(B, T, S)``, copy probability ``(B, T)``).

        Computed in float32 (a mixture of probabilities). A row with no content pitch to copy generates.
        """
        cfg = self.cfg
        scores = (self.query(hidden) @ keys.transpose(1, 2)).float() / math.sqrt(hidden.size(-1))  # (B, T, S)
        can_copy = torch.isfinite(bias).any(-1)  # (B, T)
        pointer = (scores + bias.float()).softmax(-1).nan_to_num(0.0)  # (B, T, S); all -inf rows -> 0
        gate = self.gate(hidden).float()[..., 0]  # (B, T)
        log_generate = torch.where(can_copy, F.logsigmoid(gate), 0.0)  # (B, T)
        log_copy = torch.where(can_copy, F.logsigmoid(-gate), float("-inf"))
        # Pointer mass per pitch: a batched matmul with the content's one-hot pitches (the pointer is exactly
        # 0 off the Pitch tokens, so what the clamp maps there never counts). Only the n_pitches Pitch columns
        # of the output mix; the other tokens are just generated: log g + log_softmax.
        pitch = (content_ids - cfg.pitch_id).clamp(0, cfg.n_pitches - 1)  # (B, S)
        copied = pointer @ F.one_hot(pitch, cfg.n_pitches).float()  # (B, T, n_pitches)
        if self.octave is not None:
            copied = self._move_octaves(copied, self.octave(hidden).float().softmax(-1))
        log_p = log_generate[..., None] + logits.float().log_softmax(-1)  # (B, T, V)
        low, high = cfg.pitch_id, cfg.pitch_id + cfg.n_pitches
        pitches = torch.logaddexp(log_p[..., low:high], log_copy[..., None] + copied.clamp_min(1e-30).log())
        log_p = torch.cat([log_p[..., :low], pitches, log_p[..., high:]], dim=-1)  # (B, T, V)
        return log_p, pointer, log_copy.exp()

    def _move_octaves(self, copied: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
        """Pitch mass ``copied (B, T, P)`` moved by ``o`` octaves with probability ``moves[..., K + o]``
        ``(B, T, 2K + 1)``; mass moved off the pitch range is dropped and the rest renormalised."""
        K, P = self.cfg.copy_octaves, copied.size(-1)
        padded = F.pad(copied, (12 * K, 12 * K))  # (B, T, P + 24K): room to move either way
        # moving up by o octaves: the new pitch p reads the old pitch p - 12 o
        moved = sum(moves[..., K + o, None] * padded[..., 12 * (K - o): 12 * (K - o) + P] for o in range(-K, K + 1))
        return moved / moved.sum(-1, keepdim=True).clamp_min(1e-12)  # (B, T, P); rows without a copy stay 0


# ------------------------------------------------------------------------------------ pitch hints
@dataclass
class ContentNotes:
    """The content's notes, one entry per content token ``(B, S)``: pitch index (0 .. n_pitches - 1 at
    ``Pitch`` tokens, -1 elsewhere), onset and end in ticks of musical time (see :func:`musical_time`)."""

    pitch: torch.Tensor
    onset: torch.Tensor
    end: torch.Tensor

    @classmethod
    def from_ids(cls, content_ids: torch.Tensor, cfg: ModelConfig) -> "ContentNotes":
        """Read the notes off REMI ids ``(B, S)``: a note's duration is the ``Duration`` token two after its
        ``Pitch`` (Pitch, Velocity, Duration)."""
        pitch = content_ids - cfg.pitch_id
        pitch = torch.where((pitch >= 0) & (pitch < cfg.n_pitches), pitch, -1)  # (B, S)
        onset = musical_time(*beat_grid_indices(content_ids, cfg))  # (B, S)
        duration = F.pad(content_ids[:, 2:], (0, 2), value=cfg.pad_id) - cfg.duration_id + 1  # (B, S)
        duration = torch.where((duration >= 1) & (duration <= cfg.n_durations), duration, 1)
        return cls(pitch, onset, onset + duration)


class PitchHints(nn.Module):
    """Where a pitch comes next, bias each pitch's logit by what the content plays around the current time.

    A style keeps the piece's harmony and moves it in time and register: a waltz's "oom" is the bass of the
    bar, its "pah-pah" the upper chord tones; Alberti plays low-high-middle-high; swing keeps every voice.
    So the target pitch is almost always a content pitch of the moment, or one an octave away. For a query at musical time ``t`` this computes, from the content notes in three windows
    (``now``: sounding at ``t``; ``beat``: sounding during the beat of ``t``; ``around``: sounding within
    a half note either side), ``F = 27`` binary maps over the pitches ``(N, P, F)``: the pitches, the
    lowest and the highest, each as is and an octave up and down. (Maps by pitch class, which light a
    pitch in every octave, were tried first: they made 31% of the notes an octave off.) The bias is
    ``features @ w`` with weights ``w (N, F) = linear(decoder state)``, so the model learns per style and per beat which map to follow ("the bass of the bar, an octave down").
    Unlike a pointer (CopyHead) no attention has to find the notes: the maps are exact, from the ids.

        >>> bias = hints(hidden, hints.features(ContentNotes.from_ids(content, cfg), t_query, batch))  # (N, P)
    """

    WINDOWS = ("now", "beat", "around")
    SHIFTS = (-12, 0, 12)  # the content's notes moved an octave down, kept, moved an octave up
    N_FEATURES = len(WINDOWS) * 3 * len(SHIFTS)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.weight = nn.Linear(cfg.d_model, self.N_FEATURES)  # decoder state -> weight of each map

    def features(self, notes: ContentNotes, t_query: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """Binary maps ``(N, P, F)`` for ``N`` queries at times ``t_query (N,)`` on rows ``batch (N,)`` of
        ``notes``. No gradient flows here (the maps are facts about the content)."""
        P = self.cfg.n_pitches
        pitch, onset, end = notes.pitch[batch], notes.onset[batch], notes.end[batch]  # each (N, S)
        t = t_query[:, None]  # (N, 1)
        beat = t - t % 12
        windows = {"now": (onset <= t) & (t < end),
                   "beat": (onset < beat + 12) & (end > beat),
                   "around": (onset < t + 24) & (end > t - 24)}
        maps = []
        for name in self.WINDOWS:
            inside = windows[name] & (pitch >= 0)  # (N, S)
            played = torch.zeros(len(t), P + 1, device=t.device).scatter_(1, torch.where(inside, pitch, P), 1.0)[:, :P]
            lowest = F.one_hot(torch.where(inside, pitch, P).min(1).values, P + 1)[:, :P].float()  # (N, P)
            highest = F.one_hot(torch.where(inside, pitch, -1).max(1).values + 1, P + 1)[:, 1:].float()
            for m in (played, lowest, highest):
                maps += [_shift_pitches(m, k) for k in self.SHIFTS]
        return torch.stack(maps, -1)  # (N, P, F)

    def forward(self, hidden: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``hidden (N, C)``, ``features (N, P, F)`` -> logit bias ``(N, P)``."""
        return (features @ self.weight(hidden).to(features.dtype)[..., None])[..., 0]

    def next_is_pitch(self, ids: torch.Tensor) -> torch.Tensor:
        """True where the decoder input ``ids`` is a Program token, so the grammar allows only a Pitch next."""
        return (ids >= self.cfg.program_id) & (ids < self.cfg.program_id + self.cfg.n_programs)

    def to_vocab(self, bias: torch.Tensor) -> torch.Tensor:
        """A pitch bias ``(..., P)`` placed in the Pitch columns of a vocabulary-sized ``(..., V)`` (0 elsewhere)."""
        low = self.cfg.pitch_id
        return F.pad(bias, (low, self.cfg.vocab_size - low - self.cfg.n_pitches))


def _shift_pitches(m: torch.Tensor, shift: int) -> torch.Tensor:
    """A pitch map ``m (N, P)`` moved by ``shift`` semitones: ``out[:, p] = m[:, p - shift]`` (0 off the range)."""
    if shift == 0:
        return m
    padded = F.pad(m, (abs(shift), abs(shift)))  # (N, P + 2|shift|)
    return padded[:, abs(shift) - shift: abs(shift) - shift + m.shape[1]]


# ------------------------------------------------------------------------------------ style encoder
class StyleEncoder(nn.Module):
    """CNN over a log-mel spectrogram (any number of frames) -> one style vector.

    The seed's three stride-2 3x3 convolutions (1 -> 32 -> 64 -> 128 channels), with GroupNorm and
    GELU, then mean and standard deviation over frequency and time (so any clip length works) and a
    linear projection to ``d_style``. Input dB values (``mstoolkit.audio.mel``: fixed reference,
    floor -80 dB) are mapped by the fixed affine ``(dB + 40) / 40``.

        >>> StyleEncoder(n_mels=128, d_style=128).embed(mel(audio)).shape   # mel: (128, frames)
        torch.Size([128])
    """

    def __init__(self, n_mels: int = 128, d_style: int = 128, channels: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        self.n_mels = n_mels
        layers: list[nn.Module] = []
        c_in = 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GroupNorm(math.gcd(8, c), c), nn.GELU()]
            c_in = c
        self.net = nn.Sequential(*layers)
        self.proj = nn.Linear(2 * c_in, d_style)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``mel (B, n_mels, frames)`` in dB -> style vectors ``(B, d_style)``."""
        if mel.dim() != 3 or mel.shape[1] != self.n_mels or mel.shape[2] < 1:
            raise ValueError(f"StyleEncoder: expected a mel spectrogram (B, {self.n_mels}, frames), "
                             f"got shape {tuple(mel.shape)}")
        x = (mel.to(self.net[0].weight.dtype)[:, None] + 40.0) / 40.0  # (B, 1, n_mels, frames)
        x = self.net(x).flatten(2)  # (B, C, n_mels/8 * frames/8)
        stats = torch.cat([x.mean(-1), (x.var(-1, unbiased=False) + 1e-5).sqrt()], dim=-1)  # (B, 2C)
        return self.proj(stats)  # (B, d_style)

    @torch.no_grad()
    def embed(self, mel: Any) -> torch.Tensor:
        """Style vector(s) of a mel given as numpy or torch, ``(n_mels, frames)`` -> ``(d_style,)`` or
        ``(B, n_mels, frames)`` -> ``(B, d_style)``, on the encoder's device (no dropout or batch
        statistics here, so train and eval mode agree)."""
        mel = torch.as_tensor(mel, device=self.net[0].weight.device)
        single = mel.dim() == 2
        out = self(mel[None] if single else mel)
        return out[0] if single else out


# ------------------------------------------------------------------------------------ the model
@dataclass
class KVCache:
    """Static decoding buffers for one batch (fixed shapes, so a decode step can be a CUDA graph).

    Per decoder layer: ``self_k/self_v[layer] (B, H, L, hs)``, self-attention keys/values, one position
    written per step; ``cross_k/cross_v[layer] (B, H, S, hs)``, keys/values of the encoder memory,
    written by :meth:`MusicStyleTransformer.fill_cross` (again after a style switch). One tensor per
    layer (not slices of one tensor) so that ``torch.compile`` updates them in place.
    ``self_bias (1, 1, 1, L)``: 0 where a position is filled, -inf elsewhere. ``cross_bias (B, 1, 1, S)``:
    0 at real content tokens, -inf at padding.
    """

    self_k: list[torch.Tensor]
    self_v: list[torch.Tensor]
    self_bias: torch.Tensor
    cross_k: list[torch.Tensor]
    cross_v: list[torch.Tensor]
    cross_bias: torch.Tensor
    grid_bar: torch.Tensor | None = None  # (B,) Bar tokens decoded so far (beat-grid models)
    grid_key: torch.Tensor | None = None  # (B,) running max of the grid key (see beat_grid_indices)
    content_time: torch.Tensor | None = None  # (B, 1, 1, S) musical time of each content token (time_bias, copy)
    copy_keys: torch.Tensor | None = None  # (B, S, C) pointer keys of the memory (copy models)
    content_ids: torch.Tensor | None = None  # (B, S) what the pointer copies (copy models)
    content_notes: ContentNotes | None = None  # pitch, onset, end of each content token, (B, S) each (pitch hints)

    @property
    def length(self) -> int:
        return self.self_bias.shape[-1]

    def clear(self) -> None:
        """Forget every decoded position (the cross-attention memory stays)."""
        self.self_bias.fill_(float("-inf"))
        if self.grid_bar is not None:
            self.grid_bar.zero_()
            self.grid_key.fill_(-1)


class MusicStyleTransformer(nn.Module):
    """Encoder-decoder Transformer conditioned on a style reference (see the module docstring).

        >>> model = MusicStyleTransformer(ModelConfig.preset("tiny", vocab_size=777))
        >>> logits, loss = model(content_ids, style_mel, target_in, target_out)   # (B, T, V), scalar
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        cfg = self.config = config
        adaln = cfg.conditioning == "adaln"
        self.style_encoder = StyleEncoder(cfg.n_mels, cfg.d_style, cfg.style_channels)
        self.content_emb = nn.Embedding(cfg.vocab_size, cfg.d_model if adaln else cfg.d_content)
        self.target_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)  # also the output head (tied)
        self.content_grid = BeatGridEmbedding(cfg, self.content_emb.embedding_dim) if cfg.beat_grid else None
        self.target_grid = BeatGridEmbedding(cfg, cfg.d_model) if cfg.beat_grid else None
        self.encoder = nn.ModuleList(Block(cfg, decoder=False, adaln=adaln) for _ in range(cfg.n_enc_layers))
        self.decoder = nn.ModuleList(Block(cfg, decoder=True) for _ in range(cfg.n_dec_layers))
        self.encoder_ln, self.decoder_ln = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        cos, sin = rope_tables(cfg.max_len, cfg.head_dim)
        self.register_buffer("rope_cos", cos, persistent=False)  # (max_len, hs)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.register_buffer("time_slopes", time_bias_slopes(cfg.n_heads), persistent=False)  # (H,)
        self.copy_head = CopyHead(cfg) if cfg.copy else None
        self.pitch_hints = PitchHints(cfg) if cfg.pitch_hints else None
        self.apply(self._init_weights)
        if self.copy_head is not None:
            self.copy_head.reset_octave_prior()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, getattr(module, "init_std", 0.02))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 0.02)

    # -------------------------------------------------------------- pieces of the forward pass
    def encode(self, content_ids: torch.Tensor, style: torch.Tensor,
               maps: AttentionMaps | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Content ids ``(B, S)`` (pad id at the end) and style vectors ``(B, d_style)`` ->
        ``(memory (B, S, d_model), memory_mask)``; the mask ``(B, 1, 1, S)`` is True at real tokens,
        or None when nothing is padded (which lets SDPA use its flash kernel)."""
        B, S = self._check_ids(content_ids, "content_ids")
        valid = content_ids.ne(self.config.pad_id)  # (B, S)
        mask = None if bool(valid.all()) else valid[:, None, None, :]  # one host sync; (B, 1, 1, S)
        x = self.content_emb(content_ids)  # (B, S, d_content), or (B, S, d_model) with adaln
        if self.content_grid is not None:
            x = x + self.content_grid(content_ids)
        adaln = self.config.conditioning == "adaln"
        if not adaln:
            x = torch.cat([x, style[:, None, :].expand(B, S, -1)], dim=-1)  # (B, S, d_model)
        x = self.drop(x)
        cos, sin = self.rope_cos[:S], self.rope_sin[:S]  # (S, hs)
        for block in self.encoder:
            x = self._run(block, x, cos, sin, mask=mask, style=style if adaln else None,
                          self_maps=None if maps is None else maps.encoder)
        return self.encoder_ln(x), mask

    def decode(self, target_ids: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None,
               maps: AttentionMaps | None = None, content_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder input ids ``(B, T)`` (BOS first) reading ``memory`` -> hidden states ``(B, T, d_model)``
        (``content_ids (B, S)``: needed by ``time_bias`` models)."""
        B, T = self._check_ids(target_ids, "target_ids")
        if self.config.time_bias:
            if content_ids is None:
                raise ValueError("decode: a time_bias model needs content_ids (the musical time of the memory)")
            memory_mask = self.cross_time_bias(*self.musical_times(content_ids, target_ids), memory_mask)  # (B, H, T, S)
        x = self.target_emb(target_ids)  # (B, T, d_model)
        if self.target_grid is not None:
            x = x + self.target_grid(target_ids)
        x = self.drop(x)
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]  # (T, hs)
        for block in self.decoder:
            x = self._run(block, x, cos, sin, memory=memory, memory_mask=memory_mask,
                          self_maps=None if maps is None else maps.decoder_self,
                          cross_maps=None if maps is None else maps.cross)
        return self.decoder_ln(x)

    def musical_times(self, content_ids: torch.Tensor, target_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Musical time in ticks of every content token ``(B, S)`` and every decoder input token ``(B, T)``."""
        return (musical_time(*beat_grid_indices(content_ids, self.config)),
                musical_time(*beat_grid_indices(target_ids, self.config)))

    def cross_time_bias(self, t_k: torch.Tensor, t_q: torch.Tensor, memory_mask: torch.Tensor | None) -> torch.Tensor:
        """Additive cross-attention bias ``(B, H, T, S)``: ``-slope_h * |t_q - t_k|`` in ticks (content times
        ``t_k (B, S)``, target times ``t_q (B, T)``), and -inf at padded content tokens."""
        slopes = self.time_slopes.to(self.target_emb.weight.dtype)[None, :, None, None]  # (1, H, 1, 1)
        bias = -slopes * (t_q[:, None, :, None] - t_k[:, None, None, :]).abs()  # (B, H, T, S)
        if memory_mask is not None:
            bias = bias.masked_fill(~memory_mask, float("-inf"))
        return bias

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(..., d_model)`` -> vocabulary logits ``(..., vocab_size)`` (tied to the target embedding)."""
        return F.linear(hidden, self.target_emb.weight)

    def next_token_logits(self, target_ids: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None,
                          content_ids: torch.Tensor | None = None, maps: AttentionMaps | None = None) -> torch.Tensor:
        """Logits ``(B, T, V)`` of the token after each decoder input ``target_ids (B, T)``: the decoder and
        the output head. For a copy model these are log-probabilities of the copy/generate mixture (already
        normalised, so cross-entropy, temperature and top-p treat them as logits unchanged)."""
        hidden = self.decode(target_ids, memory, memory_mask, maps, content_ids)  # (B, T, C)
        logits = self.head(hidden)  # (B, T, V)
        if self.pitch_hints is not None:
            if content_ids is None:
                raise ValueError("next_token_logits: a pitch_hints model needs content_ids (the content's notes)")
            logits = self._add_pitch_hints(logits, hidden, target_ids, content_ids, maps)
        if self.copy_head is None:
            return logits
        t_content, t_target = self.musical_times(content_ids, target_ids)  # (B, S), (B, T)
        bias = self.copy_head.bias(content_ids, t_target, t_content)  # (B, T, S)
        log_p, pointer, copy_prob = self.copy_head(hidden, logits, self.copy_head.key(memory), bias, content_ids)
        if maps is not None:
            maps.copy.append(pointer[:, None].detach())  # (B, 1, T, S)
            maps.copy_prob = copy_prob.detach()  # (B, T)
        return log_p

    def _add_pitch_hints(self, logits: torch.Tensor, hidden: torch.Tensor, target_ids: torch.Tensor,
                         content_ids: torch.Tensor, maps: AttentionMaps | None) -> torch.Tensor:
        """``logits (B, T, V)`` plus the pitch hints at the positions whose next token must be a Pitch (the
        decoder input there is a Program token): only those ``N`` positions are computed."""
        cfg = self.config
        batch, position = self.pitch_hints.next_is_pitch(target_ids).nonzero(as_tuple=True)  # (N,), (N,)
        t_target = musical_time(*beat_grid_indices(target_ids, cfg))  # (B, T)
        features = self.pitch_hints.features(ContentNotes.from_ids(content_ids, cfg), t_target[batch, position], batch)
        bias = logits.new_zeros(*target_ids.shape, cfg.n_pitches)  # (B, T, P)
        bias = bias.index_put((batch, position), self.pitch_hints(hidden[batch, position], features).to(bias.dtype))
        if maps is not None:
            maps.pitch_hint = bias.detach()
        return logits + self.pitch_hints.to_vocab(bias)  # (B, T, V)

    def _run(self, block: Block, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if (self.config.activation_checkpointing and self.training and torch.is_grad_enabled()
                and kwargs.get("self_maps") is None):
            return checkpoint(block, x, *args, use_reentrant=False, **kwargs)
        return block(x, *args, **kwargs)

    def _check_ids(self, ids: torch.Tensor, name: str) -> tuple[int, int]:
        if ids.dim() != 2 or ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"{name}: expected integer ids (B, T), got {tuple(ids.shape)} {ids.dtype}")
        if not 1 <= ids.shape[1] <= self.config.max_len:
            raise ValueError(f"{name}: length {ids.shape[1]} is outside 1..max_len={self.config.max_len}")
        return ids.shape

    # -------------------------------------------------------------- training / analysis entry point
    def forward(self, content_ids: torch.Tensor, style_mel: torch.Tensor, target_ids: torch.Tensor,
                targets: torch.Tensor | None = None, *, return_attn: bool = False):
        """Logits of the next target token at every position, and the loss when ``targets`` are given.

        ``content_ids (B, S)``, ``style_mel (B, n_mels, frames)``, ``target_ids (B, T)``: the decoder
        input (``ids[:, :-1]``, starting with BOS); ``targets (B, T)``: the tokens to predict
        (``ids[:, 1:]``), pad id ignored. Returns ``(logits (B, T, V), loss or None)``, and with
        ``return_attn=True`` ``(logits, loss, AttentionMaps)``: the same layers then compute
        attention by hand and keep every layer's ``(B, H, T_q, T_k)`` weights.
        """
        maps = AttentionMaps() if return_attn else None
        style = self.style_encoder(style_mel)  # (B, d_style)
        memory, memory_mask = self.encode(content_ids, style, maps)  # (B, S, d_model)
        logits = self.next_token_logits(target_ids, memory, memory_mask, content_ids, maps)  # (B, T, V)
        loss = None if targets is None else token_cross_entropy(logits, targets, pad_id=self.config.pad_id)
        return (logits, loss, maps) if return_attn else (logits, loss)

    # -------------------------------------------------------------- incremental decoding
    def new_cache(self, batch_size: int, length: int, content_len: int) -> KVCache:
        """Empty static buffers for decoding ``length`` positions against ``content_len`` content tokens."""
        cfg, like = self.config, dict(device=self.target_emb.weight.device, dtype=self.target_emb.weight.dtype)
        if length > cfg.max_len:
            raise ValueError(f"new_cache: length {length} exceeds max_len={cfg.max_len}")
        def per_layer(positions: int) -> list[torch.Tensor]:
            return [torch.zeros(batch_size, cfg.n_heads, positions, cfg.head_dim, **like)
                    for _ in range(cfg.n_dec_layers)]  # each (B, H, positions, hs)

        device = like["device"]
        grid = {} if not cfg.beat_grid else dict(
            grid_bar=torch.zeros(batch_size, dtype=torch.long, device=device),
            grid_key=torch.full((batch_size,), -1, dtype=torch.long, device=device))
        if cfg.time_bias or cfg.copy or cfg.pitch_hints:
            grid["content_time"] = torch.zeros(batch_size, 1, 1, content_len, **like)
        if cfg.pitch_hints:
            grid["content_notes"] = ContentNotes(*(torch.zeros(batch_size, content_len, dtype=torch.long, device=device)
                                                   for _ in range(3)))
        if cfg.copy:
            grid["copy_keys"] = torch.zeros(batch_size, content_len, cfg.d_model, **like)
            grid["content_ids"] = torch.full((batch_size, content_len), cfg.pad_id, dtype=torch.long, device=device)
        return KVCache(self_k=per_layer(length), self_v=per_layer(length),
                       self_bias=torch.full((1, 1, 1, length), float("-inf"), **like),
                       cross_k=per_layer(content_len), cross_v=per_layer(content_len),
                       cross_bias=torch.zeros(batch_size, 1, 1, content_len, **like), **grid)

    def fill_cross(self, cache: KVCache, memory: torch.Tensor, memory_mask: torch.Tensor | None,
                   content_ids: torch.Tensor | None = None) -> None:
        """Copy the cross-attention keys/values of ``memory (B, S, d_model)`` into ``cache`` (in place);
        ``content_ids (B, S)``: needed by ``time_bias`` and ``copy`` models."""
        if cache.content_time is not None:
            if content_ids is None:
                raise ValueError("fill_cross: a time_bias, copy or pitch_hints model needs content_ids")
            cache.content_time.copy_(musical_time(*beat_grid_indices(content_ids, self.config))[:, None, None, :])
        if self.copy_head is not None:
            cache.copy_keys.copy_(self.copy_head.key(memory))
            cache.content_ids.copy_(content_ids)
        if cache.content_notes is not None:
            notes = ContentNotes.from_ids(content_ids, self.config)
            for name in ("pitch", "onset", "end"):
                getattr(cache.content_notes, name).copy_(getattr(notes, name))
        for layer, block in enumerate(self.decoder):
            k, v = block.cross.memory_kv(memory)  # 2 x (B, H, S, hs)
            cache.cross_k[layer].copy_(k)
            cache.cross_v[layer].copy_(v)
        cache.cross_bias.zero_()
        if memory_mask is not None:
            cache.cross_bias.masked_fill_(~memory_mask, float("-inf"))  # (B, 1, 1, S)

    def decode_step(self, token: torch.Tensor, pos: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits ``(B, V)`` after the decoder input ``token (B,)`` at position ``pos`` (``(1,)`` long).

        Fills position ``pos`` of ``cache``. No host synchronisation and fixed shapes, so it can run
        inside a CUDA graph; equals ``head(decode(prefix, ...))[:, -1]`` up to float rounding.
        """
        x = self.target_emb(token)  # (B, d_model)
        if self.target_grid is not None:
            x = x + self.target_grid.step(token, cache.grid_bar, cache.grid_key)
        x = x[:, None]  # (B, 1, d_model)
        cross_bias = cache.cross_bias  # (B, 1, 1, S)
        if cache.content_time is not None:
            position = (cache.grid_key - cache.grid_bar * (self.config.n_positions + 1)).clamp(min=0)
            t_q = musical_time(cache.grid_bar, position)  # (B,) musical time of the prefix
        if self.config.time_bias:
            slopes = self.time_slopes.to(cross_bias.dtype)[None, :, None, None]  # (1, H, 1, 1)
            dt = (t_q.to(cross_bias.dtype)[:, None, None, None] - cache.content_time).abs()  # (B, 1, 1, S)
            cross_bias = cross_bias - slopes * dt  # (B, H, 1, S)
        cos, sin = self.rope_cos[pos], self.rope_sin[pos]  # (1, hs)
        cache.self_bias.index_fill_(-1, pos, 0.0)
        for layer, block in enumerate(self.decoder):
            x = block.step(x, cos, sin, pos, cache, layer, cross_bias)
        hidden = self.decoder_ln(x)  # (B, 1, C)
        logits = self.head(hidden)  # (B, 1, V)
        if self.pitch_hints is not None:
            hints = self.pitch_hints
            features = hints.features(cache.content_notes, t_q, torch.arange(token.shape[0], device=token.device))
            bias = hints(hidden[:, 0], features).to(logits.dtype) * hints.next_is_pitch(token)[:, None]  # (B, P)
            logits = logits + hints.to_vocab(bias)[:, None]  # (B, 1, V)
        if self.copy_head is not None:
            bias = self.copy_head.bias(cache.content_ids, t_q[:, None], cache.content_time[:, 0, 0])  # (B, 1, S)
            logits = self.copy_head(hidden, logits, cache.copy_keys, bias, cache.content_ids)[0]
        return logits[:, 0]  # (B, V)

    # -------------------------------------------------------------- convenience
    def compile_blocks(self, **compile_kwargs: Any) -> "MusicStyleTransformer":
        """``torch.compile`` each block and the style encoder in place ("regional" compilation: every
        block of a stack shares one compiled graph, so compile time does not grow with depth)."""
        for module in [*self.encoder, *self.decoder, self.style_encoder]:
            module.compile(**compile_kwargs)
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def from_pretrained(cls, path_or_name: str, *, device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None) -> "MusicStyleTransformer":
        """Load a checkpoint directory, a shipped name (``data_samples/checkpoints/<name>``) or the
        in-memory ``"debug"`` model. See :func:`mstoolkit.checkpoint.load_pretrained`."""
        from mstoolkit.checkpoint import load_pretrained

        return load_pretrained(path_or_name, device=device, dtype=dtype)

    def save_pretrained(self, directory: str, *, dtype: torch.dtype | None = None) -> None:
        """Write ``config.json`` + ``model.safetensors`` (``dtype=torch.float16`` halves the file)."""
        from mstoolkit.checkpoint import save_pretrained

        save_pretrained(self, directory, dtype=dtype)

    def generate(self, content_ids: Any, style_mel: Any, **options: Any) -> list[list[int]]:
        """Sampled target ids for a batch; see :func:`mstoolkit.generate.generate` for the options."""
        from mstoolkit.generate import generate

        return generate(self, content_ids, style_mel, **options)

    def transfer(self, tokenizer: Any, content: Any, reference: Any, **sampling: Any):
        """``content`` re-written in the style of ``reference``; see :func:`mstoolkit.generate.transfer`."""
        from mstoolkit.generate import transfer

        return transfer(self, tokenizer, content, reference, **sampling)
