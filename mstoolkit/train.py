"""Training: the config, the loop written out (nanoGPT's train.py is the model), checkpoints that
resume exactly, and DistributedDataParallel under ``torchrun``.

    >>> cfg = TrainConfig.preset("tiny").with_overrides({"max_steps": 200, "out": "runs/tiny"})
    >>> trainer = Trainer(cfg, on_step=lambda t, m: print(m["step"], m["loss"]))  # doctest: +SKIP
    >>> history = trainer.fit()  # or trainer.load_checkpoint(), then fit(), to resume  # doctest: +SKIP

What one optimizer step does (:meth:`Trainer.train_step`):

1. ``grad_accum`` micro-batches of ``batch_size`` StyleBench triplets are taken from the seeded data
   order; under ``torchrun`` each process takes its own slice of the same global micro-batch.
2. Each runs forward under autocast (bf16/fp16 where the device supports it). The token loss is the
   *sum* of cross-entropies divided by the number of target tokens of the whole step (all
   micro-batches, all processes), so the gradient equals that of one big batch whatever the split
   into micro-batches and processes. With ``style_loss_weight > 0`` a supervised style-contrastive
   loss on the style encoder's vectors (references of the same style together, others apart) is
   added; it is what gives the style vector a meaning before the decoder has learned to use it.
3. ``backward`` (through a GradScaler only for fp16), ``unscale_``, clip, then a NaN/inf check that
   stops with an error naming the step *before* the optimizer touches the weights.
4. AdamW step with the learning rate of the pure :func:`get_lr` (linear warm-up, cosine or linear decay).

Exact resume: a checkpoint holds the weights (safetensors, loadable with
``MusicStyleTransformer.from_pretrained``), the optimizer, the grad scaler, every process's RNG
state, the data position (epoch and offset of a seeded permutation) and the history. Data
augmentation (transposition) draws from a generator seeded by ``(seed, epoch, index)``, so the same
sample gets the same shift whether it is loaded before or after a restart, in any worker.
Checkpoints are written to a temporary folder that is renamed into place, then the ``latest``
pointer is replaced; a run killed at any moment leaves the previous checkpoint intact.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import threading
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn

from mstoolkit.bench import run_bench, transfer_system
from mstoolkit.checkpoint import (LATEST_NAME, LOG_NAME, STATE_NAME, STEP_KEYS, TOKENIZER_NAME,
                                  TRAIN_CONFIG_NAME, WEIGHTS_NAME, latest_checkpoint, read_config, read_weights,
                                  load_pretrained, remove_stale_temporaries, save_pretrained, write_text_atomic)
from mstoolkit.config import (TRANSFER_TEMPERATURE, UserError, coerce, field_types, from_dict, plain, split_overrides,
                              unknown_key)
from mstoolkit.data import StyleBench, StyleBenchConfig, StyleBenchDataset, build_stylebench, collate, parse_meter
from mstoolkit.losses import style_contrastive_loss, token_cross_entropy, token_cross_entropy_sum
from mstoolkit.model import PRESETS, ModelConfig, MusicStyleTransformer
from mstoolkit.tokenizer import RemiTokenizer

DECAYS = ("cosine", "linear", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# Training sizes per model preset (fields not named keep the TrainConfig defaults, the `tiny` values).
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "debug": dict(batch_size=2, grad_accum=1, max_tokens=512, max_steps=20, warmup_steps=2, eval_every=10,
                  ckpt_every=10, eval_samples=8),
    "tiny": dict(),
    "base": dict(batch_size=32, grad_accum=1, lr=5e-4, min_lr=5e-5, warmup_steps=500, max_steps=20000,
                 eval_every=500, ckpt_every=500, eval_samples=256),
}


# ----------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Everything that defines a training run; JSON/YAML round trip, dotted overrides.

        >>> TrainConfig.preset("debug").with_overrides({"lr": "3e-4", "data.window_bars": "2"}).lr
        0.0003

    Keys: the fields below; ``data.<field>`` sets a :class:`~mstoolkit.data.StyleBenchConfig` field,
    ``model.<field>`` a :class:`~mstoolkit.model.ModelConfig` field of the preset.
    """

    model_preset: str = "tiny"  # model size: a ModelConfig preset ("debug", "tiny", "base")
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides, e.g. {"dropout": 0.0}
    init_from: str | None = None  # start from these weights (checkpoint/run folder or shipped name) with a fresh
    #                               optimizer and schedule: train a model further ("fine-tune"); None: random init
    beat_grid: bool = True  # bar/position embeddings from the tokenizer's Bar and Position tokens (ModelConfig)
    data: StyleBenchConfig = field(default_factory=StyleBenchConfig)  # the StyleBench build to train on
    cache_dir: str | None = None  # data caches (None: $MSTOOLKIT_CACHE or ~/.cache/mstoolkit)
    out: str = "runs/tiny"  # run folder: checkpoints, log.jsonl
    max_tokens: int = 1024  # longest content/target sequence (longer windows are cut at a bar line)
    batch_size: int = 8  # sequences per micro-batch per process
    grad_accum: int = 8  # micro-batches per optimizer step (the seed's 8)
    lr: float = 1e-3  # peak learning rate, reached after warm-up
    min_lr: float = 1e-4  # learning rate at the end of the decay
    warmup_steps: int = 100  # linear warm-up from lr / warmup_steps to lr
    decay: str = "cosine"  # "cosine", "linear" or "constant" decay from lr to min_lr over the remaining steps
    max_steps: int = 2000  # optimizer steps
    weight_decay: float = 0.1  # AdamW, on matrices only (not on biases and norms)
    beta1: float = 0.9  # AdamW's decay of its gradient average
    beta2: float = 0.95  # AdamW's decay of its squared-gradient average
    clip: float = 1.0  # max global gradient norm (0: no clipping)
    style_loss_weight: float = 0.1  # weight of the style-contrastive loss (0: off; the ablation flag)
    style_temperature: float = 0.1  # temperature of the style-contrastive loss
    # Weight of the cross-entropy at target Pitch tokens (1: plain token mean). Pitch tokens are ~1/4 of the
    # target and hold the notes a listener checks; rhythm tokens dominate a plain mean (round 3 of
    # benchmarks/results/stylebench_keep_the_piece.md). The logged training loss is the weighted one.
    pitch_loss_weight: float = 1.0
    # Cross-entropy over the vocabulary in chunks of this many target tokens (0: all at once). Each chunk's
    # float32 copy of the logits is made, used and dropped in turn (and made again in backward), so the
    # float32 (B*T, V) copy never exists whole: less memory on a GPU, room for a larger micro-batch. Same
    # loss and gradients up to float rounding (losses.token_cross_entropy_sum; benchmarks/profile_step.py).
    loss_chunk: int = 0
    # Reference augmentation (train split only; mstoolkit.augment): play each reference, with probability
    # K / (K + 1), by one of K redrawn sets of GM instruments (K more cached mels per reference), and add a
    # random room and noise floor in the mel domain. StyleBench gives every style fixed instruments, so
    # without it the style encoder learns the timbre as the style (benchmarks/results/reference_robustness.md).
    reference_timbres: int = 0
    reference_room: bool = False
    # ... and give it, in the mel domain, another instrument's overtones and another microphone's colour
    # (augment.overtones_and_colour): timbres the pool of GM programs does not cover, at no rendering cost.
    reference_spectrum: bool = False
    # ... and move each redrawn reference (reference_timbres >= 1) by a random interval of up to N semitones
    # (augment.in_another_register): StyleBench plays every style in the corpus's register, so without it the
    # encoder hears register as style (an octave-down clean reference recognised 0.42, reference_robustness.md).
    reference_transpose: int = 0
    # Seen more often: "collection=N" entries (collection as in data.collection_of, e.g. "bach=3") put each
    # train triplet of that collection N times into every epoch. A fine-tune on a wide corpus can so keep
    # what an earlier model knew of one collection, without a new StyleBench build (same splits, same mels).
    collection_repeats: tuple[str, ...] = ()
    # Meter augmentation (train split only; data.rebar): with probability rebar_prob a window in a simple
    # meter (4/4, 3/4, 4/2) is re-barred into one of rebar_meters ("5/4", "7/4") before its two styles are
    # rendered. No v2 collection has a piece in 5/4 or 7/4, and a model that never saw those bars cannot
    # write them (benchmarks/results/real_world.md, odd_meter).
    rebar_meters: tuple[str, ...] = ()
    rebar_prob: float = 0.0
    # Same-style items (train split only): with probability identity_prob the content is the target's own
    # rendering, so a reference in the content's style asks for the notes back (a plain file asked "straight").
    identity_prob: float = 0.0
    # Plain contents (train split only): with probability plain_content_prob the content is the window's
    # "straight" rendering, what transfer() makes of a user's file (a triplet gives it one time in nine).
    plain_content_prob: float = 0.0
    eval_every: int = 100  # steps between validations (0: only at the end)
    eval_samples: int = 64  # val triplets for the val loss (0: no val loss)
    eval_bench: int = 0  # val triplets transferred by generation and scored with StyleBench metrics (0: off)
    eval_temperature: float = TRANSFER_TEMPERATURE  # temperature of those transfers (0: greedy, as transfer)
    ckpt_every: int = 100  # steps between checkpoints (0: only at the end)
    keep_checkpoints: int = 2  # checkpoint folders kept (the newest)
    log_every: int = 1  # steps between lines in log.jsonl and progress updates
    seed: int = 0  # model initialisation, batch order and augmentation draws
    device: str = "auto"  # "auto" (cuda, else mps, else cpu), "cpu", "cuda", "cuda:1", "mps"
    precision: str = "auto"  # "auto" (bf16 on CUDA where supported, else fp16 on CUDA, else fp32), "fp32", "bf16", "fp16"
    activation_checkpointing: bool = False  # recompute block activations in backward (less memory)
    compile: bool = False  # torch.compile each block (MusicStyleTransformer.compile_blocks)
    num_workers: int = 0  # DataLoader worker processes
    # Batch by length: sort each run of this many micro-batches by content + target tokens before cutting it
    # into micro-batches (0: off, plain random batches). Less padding, so more target tokens/s; see DataOrder.
    group_by_length: int = 0
    precompute_mels: bool = True  # render all reference mels before step 1 (with a progress bar)

    def __post_init__(self) -> None:
        if isinstance(self.data, dict):
            self.data = _build_data_config(self.data)
        if not isinstance(self.data, StyleBenchConfig):
            raise UserError(f"TrainConfig.data: expected StyleBenchConfig fields, got {type(self.data).__name__}")
        self.model = _model_overrides(self.model or {})
        hints = field_types(TrainConfig)
        for f in dataclasses.fields(self):
            if f.name not in ("data", "model"):
                setattr(self, f.name, coerce(f.name, hints[f.name], getattr(self, f.name)))
        self._validate()

    def repeats(self) -> dict[str, int]:
        """``collection_repeats`` as ``{collection: N}``; UserError naming a malformed entry.

            >>> TrainConfig(collection_repeats=("bach=3",)).repeats()
            {'bach': 3}
        """
        out: dict[str, int] = {}
        for entry in self.collection_repeats:
            name, _, count = str(entry).partition("=")
            if not name.strip() or not count.strip().isdigit() or int(count) < 1:
                raise UserError(f"TrainConfig.collection_repeats: expected entries 'collection=N' with N >= 1 "
                                f"(e.g. 'bach=3'), got {entry!r}")
            out[name.strip()] = int(count)
        return out

    def _validate(self) -> None:
        def check(ok: bool, key: str, expected: str) -> None:
            if not ok:
                raise UserError(f"TrainConfig.{key}: expected {expected}, got {getattr(self, key)!r}")

        check(self.model_preset in PRESETS, "model_preset", f"one of {sorted(PRESETS)}")
        for key in ("max_tokens", "batch_size", "grad_accum", "max_steps", "keep_checkpoints", "log_every"):
            check(getattr(self, key) >= 1, key, "an integer >= 1")
        for key in ("warmup_steps", "eval_every", "eval_samples", "eval_bench", "ckpt_every", "num_workers",
                    "group_by_length", "reference_timbres", "reference_transpose"):
            check(getattr(self, key) >= 0, key, "an integer >= 0")
        for key in ("weight_decay", "clip", "style_loss_weight", "min_lr"):
            check(getattr(self, key) >= 0 and math.isfinite(getattr(self, key)), key, "a number >= 0")
        check(0 < self.lr < math.inf, "lr", "a number > 0")
        check(self.min_lr <= self.lr, "min_lr", f"a number <= lr ({self.lr})")
        check(0 <= self.beta1 < 1, "beta1", "a number in [0, 1)")
        check(0 <= self.beta2 < 1, "beta2", "a number in [0, 1)")
        check(self.style_temperature > 0, "style_temperature", "a number > 0")
        check(not self.reference_transpose or self.reference_timbres >= 1, "reference_transpose",
              "0 unless reference_timbres >= 1 (it moves the redrawn references)")
        check(0 < self.pitch_loss_weight < math.inf, "pitch_loss_weight", "a number > 0 (1 = plain cross-entropy)")
        check(self.loss_chunk >= 0, "loss_chunk", "an integer >= 0 (target tokens per cross-entropy chunk; 0 = off)")
        check(self.eval_temperature >= 0, "eval_temperature", "a number >= 0 (0 = greedy)")
        check(self.decay in DECAYS, "decay", f"one of {DECAYS}")
        check(self.precision in PRECISIONS, "precision", f"one of {PRECISIONS}")
        self.repeats()  # checks collection_repeats
        for meter in self.rebar_meters:
            try:
                parse_meter(meter)
            except UserError as e:
                raise UserError(f"TrainConfig.rebar_meters: {e}") from None
        check(0 <= self.rebar_prob <= 1, "rebar_prob", "a number in [0, 1]")
        check(not self.rebar_prob or bool(self.rebar_meters), "rebar_prob",
              "0 when rebar_meters is empty (name the meters, e.g. --rebar-meters 5/4,7/4)")
        check(0 <= self.identity_prob <= 1, "identity_prob", "a number in [0, 1]")
        check(0 <= self.plain_content_prob <= 1, "plain_content_prob", "a number in [0, 1]")
        check(self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"), "device",
              "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        tokenizer = RemiTokenizer()
        self.model_config(tokenizer.vocab_size, tokenizer)  # checks the model overrides together with the preset

    # -------------------------------------------------------------- construction
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "TrainConfig":
        """Training defaults for model preset ``name`` (``"debug"``, ``"tiny"``, ``"base"``).

            >>> TrainConfig.preset("debug").batch_size
            2
        """
        if name not in TRAIN_PRESETS:
            raise UserError(f"unknown config preset {name!r}; choose one of {sorted(TRAIN_PRESETS)} or give a "
                             ".yaml/.json file")
        return cls(**{"model_preset": name, "out": f"runs/{name}", **TRAIN_PRESETS[name], **overrides})

    def model_config(self, vocab_size: int, tokenizer: Any = None) -> ModelConfig:
        """The :class:`ModelConfig`: the preset, the ``model`` overrides and the training flags (the
        beat-grid token ids come from ``tokenizer``)."""
        grid = ModelConfig.beat_grid_from(tokenizer) if self.beat_grid and tokenizer is not None else {}
        try:
            return ModelConfig.preset(self.model_preset, vocab_size=vocab_size,
                                      activation_checkpointing=self.activation_checkpointing, **grid, **self.model)
        except (TypeError, ValueError) as err:
            raise UserError(f"TrainConfig.model: {err}") from err

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["data"] = plain(self.data.to_dict())
        data["model"] = plain(dict(self.model))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; a ``model_preset`` key picks that preset's training defaults
        first (:meth:`preset`). Unknown keys raise ValueError naming them."""
        if not isinstance(data, dict):
            raise UserError(f"TrainConfig: expected a mapping of config keys, got {type(data).__name__}")
        base = cls.preset(str(data.get("model_preset", "tiny")))
        flat = {k: v for k, v in data.items() if k not in ("data", "model", "model_preset")}
        for key, value in (data.get("data") or {}).items():
            flat[f"data.{key}"] = value
        for key, value in (data.get("model") or {}).items():
            flat[f"model.{key}"] = value
        return base.with_overrides(flat)

    def with_overrides(self, overrides: dict[str, Any]) -> "TrainConfig":
        """A copy with ``{"lr": 3e-4, "data.corpus": "data_samples", "model.dropout": "0"}`` applied.

        Values may be strings (from a command line): they are parsed by the field's type. Unknown
        keys and bad values raise ValueError naming the key.
        """
        top = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        sections = {"data": list(field_types(StyleBenchConfig)),
                    "model": [k for k in field_types(ModelConfig) if k not in _SET_BY_TRAINER]}
        changes, changed = split_overrides(overrides, [k for k in top if k not in sections], sections)
        top.update(changes)
        top["data"] = _build_data_config({**self.data.to_dict(), **changed["data"]})
        top["model"] = {**self.model, **changed["model"]}
        return TrainConfig(**top)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config as JSON (``.json``) or YAML (``.yaml``/``.yml``)."""
        path = Path(path)
        text = (_yaml().safe_dump(self.to_dict(), sort_keys=False) if path.suffix in (".yaml", ".yml")
                else json.dumps(self.to_dict(), indent=2) + "\n")
        write_text_atomic(path, text)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        """Read a ``.json``/``.yaml``/``.yml`` config; ValueError naming the file on any problem."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such config file")
        try:
            text = path.read_text()
            data = _yaml().safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        except Exception as err:  # json and yaml raise their own parse errors
            raise UserError(f"{path}: not a readable {path.suffix or 'JSON'} config ({err})") from err
        try:
            return cls.from_dict(data or {})
        except UserError as err:
            raise UserError(f"{path}: {err}") from err

    @staticmethod
    def keys() -> dict[str, Any]:
        """Every overridable key with its type (the CLI turns each into a ``--key`` flag)."""
        keys = {k: v for k, v in field_types(TrainConfig).items() if k not in ("data", "model", "model_preset")}
        keys.update({f"data.{k}": v for k, v in field_types(StyleBenchConfig).items()})
        keys.update({f"model.{k}": v for k, v in field_types(ModelConfig).items() if k not in _SET_BY_TRAINER})
        return keys


def _build_data_config(data: dict[str, Any]) -> StyleBenchConfig:
    """The StyleBenchConfig of ``TrainConfig.data``: values parsed by type, styles checked by name."""
    try:
        config = from_dict(StyleBenchConfig, data, parse=True, label="data")
    except UserError:
        raise
    except (TypeError, ValueError) as err:  # StyleBenchConfig's own checks
        raise UserError(f"TrainConfig.data: {err}") from err
    if config.styles is not None:
        from mstoolkit.styles import list_styles

        unknown = [name for name in config.styles if name not in list_styles()]
        if unknown:
            raise UserError(f"data.styles: unknown style(s) {unknown}; styles: {', '.join(list_styles())}")
    return config


# ModelConfig fields that come from the tokenizer or a TrainConfig flag, never from ``model.<field>``.
_SET_BY_TRAINER = {"vocab_size", "activation_checkpointing", "bar_id", "position_id", "n_positions"}


def _model_overrides(model: dict[str, Any]) -> dict[str, Any]:
    """ModelConfig overrides, each parsed by its field type; the _SET_BY_TRAINER fields are not."""
    hints = field_types(ModelConfig)
    known = sorted(set(hints) - _SET_BY_TRAINER)
    if not isinstance(model, dict):
        raise UserError(f"TrainConfig.model: expected a mapping of ModelConfig fields, got {model!r}")
    for key in model:
        if key not in known:
            raise UserError(unknown_key(f"model.{key}", [f"model.{k}" for k in known]))
    return {key: coerce(f"model.{key}", hints[key], value) for key, value in model.items()}


def _yaml():
    import yaml

    return yaml


# ----------------------------------------------------------------------------- schedule
def get_lr(step: int, cfg: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up over ``warmup_steps`` to
    ``lr``, then ``decay`` down to ``min_lr`` at ``max_steps`` (and ``min_lr`` after).

        >>> cfg = TrainConfig(lr=1.0, min_lr=0.0, warmup_steps=10, max_steps=110)
        >>> get_lr(0, cfg), get_lr(9, cfg), get_lr(60, cfg), get_lr(110, cfg)
        (0.1, 1.0, 0.5, 0.0)
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.decay == "constant" or step >= cfg.max_steps:
        return cfg.lr if cfg.decay == "constant" else cfg.min_lr
    ratio = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)  # 0 -> 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio)) if cfg.decay == "cosine" else 1.0 - ratio  # 1 -> 0
    return cfg.min_lr + coeff * (cfg.lr - cfg.min_lr)


# ----------------------------------------------------------------------------- data order
class DataOrder:
    """A seeded permutation of ``range(n)`` per epoch, read in global micro-batches.

    A global micro-batch is ``batch_size * world_size`` consecutive entries of the permutation;
    process ``rank`` takes its ``batch_size`` slice (what ``DistributedSampler`` does, but resumable
    at any micro-batch). An epoch's remainder smaller than a global micro-batch is dropped. The
    position is ``(epoch, offset)``; :meth:`batch` and :meth:`advance` are pure.

        >>> order = DataOrder(10, batch_size=4, seed=0)
        >>> len(order.batch((0, 0))), order.advance((0, 0)), order.advance((0, 4))   # 2 left over: dropped
        (4, (0, 4), (1, 0))
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1, *,
                 lengths: Sequence[int] | None = None, group: int = 0) -> None:
        self.n, self.batch_size, self.seed, self.rank, self.world_size = n, batch_size, seed, rank, world_size
        self.global_batch = batch_size * world_size
        if group and (lengths is None or len(lengths) != n):
            raise ValueError(f"DataOrder: group={group} needs one length per item ({n})")
        self.lengths, self.group = lengths, group
        if n < self.global_batch:
            raise UserError(f"the train split has {n} triplets, fewer than one micro-batch of batch_size "
                             f"{batch_size} x {world_size} process(es); lower batch_size or add pieces")
        self._perm: tuple[int, list[int]] | None = None

    def permutation(self, epoch: int) -> list[int]:
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(_mix(self.seed, epoch))
            perm = torch.randperm(self.n, generator=g).tolist()
            self._perm = (epoch, self._grouped(perm, g) if self.group else perm)
        return self._perm[1]

    def _grouped(self, perm: list[int], g: torch.Generator) -> list[int]:
        """``perm`` with similar lengths in each global micro-batch: every run of ``group`` micro-batches
        is sorted by length and cut into micro-batches, then the micro-batches of the whole epoch are
        shuffled (so a step still sees a random length, and short and long steps alternate)."""
        size, gb = self.group * self.global_batch, self.global_batch
        batches = []
        for start in range(0, len(perm), size):
            run = sorted(perm[start:start + size], key=lambda i: self.lengths[i])  # stable: ties keep perm order
            batches += [run[i:i + gb] for i in range(0, len(run), gb)]
        full = [b for b in batches if len(b) == gb]
        rest = [i for b in batches if len(b) < gb for i in b]  # the epoch's remainder: last, and dropped
        return [i for k in torch.randperm(len(full), generator=g).tolist() for i in full[k]] + rest

    def batch(self, position: tuple[int, int]) -> list[tuple[int, int]]:
        """This process's ``(epoch, index)`` keys of the micro-batch at ``position``."""
        epoch, offset = position
        start = offset + self.rank * self.batch_size
        return [(epoch, i) for i in self.permutation(epoch)[start:start + self.batch_size]]

    def advance(self, position: tuple[int, int]) -> tuple[int, int]:
        """The position after the micro-batch at ``position``."""
        epoch, offset = position
        offset += self.global_batch
        return (epoch + 1, 0) if offset + self.global_batch > self.n else (epoch, offset)

    def batches(self, position: tuple[int, int]) -> Iterator[list[tuple[int, int]]]:
        """Micro-batches from ``position`` on, forever (a DataLoader ``batch_sampler``)."""
        while True:
            yield self.batch(position)
            position = self.advance(position)


class _Batches:
    """An iterable ``batch_sampler`` over a :class:`DataOrder` from a fixed start position."""

    def __init__(self, order: DataOrder, position: tuple[int, int]) -> None:
        self.order, self.position = order, position

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return self.order.batches(self.position)


def _mix(*parts: int) -> int:
    """A 63-bit seed from integers (the same on every platform)."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


def repeated_indices(triplets: Sequence[Any], repeats: dict[str, int]) -> list[int]:
    """Indices of ``triplets``, each ``repeats[collection]`` times (once if its collection is not named);
    UserError if a named collection has no triplet (a typo would otherwise change nothing, silently).

        >>> from mstoolkit.data import Triplet
        >>> ts = [Triplet("bach/a@0", "x/b@0", "straight", "swing"), Triplet("x/b@0", "bach/a@0", "swing", "waltz")]
        >>> repeated_indices(ts, {"bach": 2})
        [0, 0, 1]
    """
    from mstoolkit.data import collection_of, piece_of

    collections = [collection_of(piece_of(t.content_id)) for t in triplets]
    missing = sorted(set(repeats) - set(collections))
    if missing:
        raise UserError(f"collection_repeats: no train triplets from {missing}; "
                        f"the train split's collections: {sorted(set(collections))}")
    return [i for i, c in enumerate(collections) for _ in range(repeats.get(c, 1))]


class Repeated(torch.utils.data.Dataset):
    """``dataset`` read through ``indices`` (items may repeat): ``Repeated(d, [0, 0, 1])[1] == d[0]``."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        return self.dataset[self.indices[index]]

    def lengths(self, progress: bool = False) -> list[int]:
        base = self.dataset.lengths(progress=progress)
        return [base[i] for i in self.indices]


class SeededItems(torch.utils.data.Dataset):
    """``dataset[(epoch, index)]`` = ``dataset[index]`` drawn with torch's RNG seeded by
    ``(seed, epoch, index)``: the random transposition of a sample does not depend on the worker,
    the process or a restart; the global RNG (dropout) is left untouched."""

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(self.seed, epoch, index))
            return self.dataset[index]


class _MelJobs(torch.utils.data.Dataset):
    """Item ``i`` renders (or finds cached) the mel of ``(window, style, timbre, transpose) = todo[i]``."""

    def __init__(self, bench: StyleBench, todo: list[tuple[str, str, int, int]]) -> None:
        self.bench, self.todo = bench, todo

    def __len__(self) -> int:
        return len(self.todo)

    def __getitem__(self, index: int) -> int:
        self.bench.mel(*self.todo[index])
        return index


# ----------------------------------------------------------------------------- objective
class TrainingObjective(nn.Module):
    """The model plus its losses, as one module so DistributedDataParallel sees a single forward.

    ``forward(content_ids, reference_mel, target_ids, style_labels)`` returns
    ``(token_loss_sum, style_loss)``: the *sum* of target-token cross-entropies (pad ignored) and
    the style-contrastive loss of the style vectors (0 if the weight is 0 or no two references
    share a style). The path is :meth:`MusicStyleTransformer.forward`'s, keeping the style vectors.
    ``token_weights`` ``(V,)``: a weight per target token id in that sum (None: all 1), e.g. more
    weight on Pitch tokens (``TrainConfig.pitch_loss_weight``); ``weighted=False`` gives the plain sum
    (validation, so val losses stay comparable across weights). ``loss_chunk > 0``: the cross-entropy is
    taken that many target tokens at a time (``TrainConfig.loss_chunk``, :func:`token_cross_entropy_sum`).
    """

    def __init__(self, model: MusicStyleTransformer, style_loss_weight: float = 0.0,
                 style_temperature: float = 0.1, token_weights: torch.Tensor | None = None,
                 loss_chunk: int = 0) -> None:
        super().__init__()
        self.model, self.style_loss_weight, self.style_temperature = model, style_loss_weight, style_temperature
        self.loss_chunk = loss_chunk
        self.register_buffer("token_weights", token_weights, persistent=False)

    def forward(self, content_ids: torch.Tensor, reference_mel: torch.Tensor, target_ids: torch.Tensor,
                style_labels: torch.Tensor, weighted: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        model, pad = self.model, self.model.config.pad_id
        style = model.style_encoder(reference_mel)  # (B, d_style)
        memory, memory_mask = model.encode(content_ids, style)  # (B, S, d_model)
        logits = model.next_token_logits(target_ids[:, :-1], memory, memory_mask, content_ids)  # (B, T - 1, V)
        targets = target_ids[:, 1:]  # (B, T - 1)
        weights = self.token_weights if weighted else None  # (V,) or None
        if self.loss_chunk or weights is not None:  # sum of weight(target) * CE, in chunks if loss_chunk > 0
            token_sum = token_cross_entropy_sum(logits, targets, pad_id=pad, token_weights=weights,
                                                chunk=self.loss_chunk)
        else:
            token_sum = token_cross_entropy(logits, targets, pad_id=pad) * targets.ne(pad).sum()
        style_term = torch.zeros((), device=style.device)
        same = style_labels[:, None] == style_labels[None, :]  # (B, B)
        if self.style_loss_weight > 0 and int(same.sum()) > len(style_labels):  # some pair shares a style
            style_term = style_contrastive_loss(style, style_labels, temperature=self.style_temperature)
        return token_sum, style_term


def pitch_token_weights(cfg: TrainConfig, tokenizer: Any, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """The ``token_weights (V,)`` of :class:`TrainingObjective` for ``cfg.pitch_loss_weight``: that weight on
    the tokenizer's Pitch ids, 1 elsewhere; None when the weight is 1 (the plain cross-entropy).

        >>> pitch_token_weights(TrainConfig(pitch_loss_weight=3.0), RemiTokenizer()).unique().tolist()
        [1.0, 3.0]
    """
    if cfg.pitch_loss_weight == 1.0:
        return None
    is_pitch = torch.tensor([t == "Pitch" for t in tokenizer.token_types])  # (V,)
    return torch.where(is_pitch, cfg.pitch_loss_weight, 1.0).to(device)  # (V,)


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device | str = "cpu") -> torch.optim.AdamW:
    """The trainer's AdamW: ``cfg.lr``, betas and weight decay on matrices only (not on biases and norms);
    the fused kernel on CUDA.

        >>> make_optimizer(torch.nn.Linear(2, 2), TrainConfig()).param_groups[1]["weight_decay"]   # the bias
        0.0
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]  # matrices, embeddings, convolutions
    no_decay = [p for p in params if p.dim() < 2]  # biases, norms
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if torch.device(device).type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **extra)


# ----------------------------------------------------------------------------- distributed
def distributed_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment variables (``(0, 1, 0)`` alone)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def _resolve_device(name: str, local_rank: int, distributed: bool) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank if distributed else torch.cuda.current_device())
        name = "mps" if torch.backends.mps.is_available() and not distributed else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"TrainConfig.device: {name!r} asked for, but CUDA is not available here")
        if distributed and device.index is None:
            device = torch.device("cuda", local_rank)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"TrainConfig.device: {name!r} asked for, but MPS is not available here")
    return device


def _resolve_precision(name: str, device: torch.device) -> str:
    if name != "auto":
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError("TrainConfig.precision: bf16 is not supported by this GPU; use fp16 or fp32")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


# ----------------------------------------------------------------------------- the trainer
class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient became NaN/inf; raised before the step, so no checkpoint holds it."""


Callback = Callable[..., Any]


class Trainer:
    """Trains a :class:`MusicStyleTransformer` on StyleBench (see the module docstring).

        >>> trainer = Trainer(TrainConfig.preset("debug"), on_step=lambda t, m: print(m))  # doctest: +SKIP
        >>> history = trainer.fit()  # doctest: +SKIP

    ``bench``: a StyleBench already built (else ``build_stylebench(cfg.data)``). Callbacks are called
    on rank 0 as ``on_step(trainer, metrics)`` after every step, ``on_eval(trainer, metrics)``
    after each validation and ``on_checkpoint(trainer, path)`` after each checkpoint; an exception
    in a callback stops training (the last checkpoint stays). :meth:`pause`, :meth:`unpause` and
    :meth:`stop` may be called from another thread (a dashboard); they act between steps, and
    ``stop`` writes a checkpoint before :meth:`fit` returns. Under ``torchrun`` the trainer runs DDP.
    """

    def __init__(self, config: TrainConfig, *, bench: StyleBench | None = None, tokenizer: Any = None,
                 progress: bool = True, on_step: Callback | Sequence[Callback] | None = None,
                 on_eval: Callback | Sequence[Callback] | None = None,
                 on_checkpoint: Callback | Sequence[Callback] | None = None) -> None:
        from mstoolkit.tokenizer import RemiTokenizer

        cfg = self.config = config
        self.progress = progress
        self.callbacks: dict[str, list[Callback]] = {"on_step": [], "on_eval": [], "on_checkpoint": []}
        for name, fns in (("on_step", on_step), ("on_eval", on_eval), ("on_checkpoint", on_checkpoint)):
            for fn in ([] if fns is None else [fns] if callable(fns) else fns):
                self.add_callback(name, fn)

        # processes and device
        self.rank, self.world_size, self.local_rank = distributed_env()
        self.distributed = self.world_size > 1
        self._owns_process_group = False
        self.device = _resolve_device(cfg.device, self.local_rank, self.distributed)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.distributed and not dist.is_initialized():
            # env:// (torchrun's variables); a long timeout: rank 0 may build the data caches first
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo", timeout=timedelta(hours=1))
            self._owns_process_group = True
        self.is_main = self.rank == 0
        self.precision = _resolve_precision(cfg.precision, self.device)
        self.out = Path(cfg.out)

        # model, objective, optimizer
        self.tokenizer = tokenizer or RemiTokenizer()
        torch.manual_seed(cfg.seed)  # the same initial weights in every process
        self.model = MusicStyleTransformer(cfg.model_config(self.tokenizer.vocab_size, self.tokenizer)).to(self.device)
        if cfg.init_from:
            self._load_initial_weights(cfg.init_from)
        self.max_tokens = min(cfg.max_tokens, self.model.config.max_len)
        if cfg.compile:
            self.model.compile_blocks()
        self.objective = TrainingObjective(self.model, cfg.style_loss_weight, cfg.style_temperature,
                                           pitch_token_weights(cfg, self.tokenizer, self.device),
                                           loss_chunk=cfg.loss_chunk)
        self.ddp = None
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(self.objective, device_ids=[self.device.index]
                                               if self.device.type == "cuda" else None)
        self.optimizer = self._make_optimizer()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        torch.manual_seed(_mix(cfg.seed, self.rank))  # dropout: a different stream per process

        # data
        self.bench = bench if bench is not None else self._build_bench()
        if cfg.precompute_mels:
            self._precompute_mels()
        self.train_set = StyleBenchDataset(self.bench, "train", self.tokenizer, max_tokens=self.max_tokens,
                                           reference_timbres=cfg.reference_timbres, reference_room=cfg.reference_room,
                                           reference_spectrum=cfg.reference_spectrum,
                                           reference_transpose=cfg.reference_transpose,
                                           rebar_meters=cfg.rebar_meters, rebar_prob=cfg.rebar_prob,
                                           identity_prob=cfg.identity_prob,
                                           plain_content_prob=cfg.plain_content_prob)
        self.val_set = StyleBenchDataset(self.bench, "val", self.tokenizer, max_tokens=self.max_tokens, augment=False)
        self.train_items = Repeated(self.train_set, repeated_indices(self.bench.triplets["train"], cfg.repeats()))
        lengths = self.train_items.lengths(progress=self.progress and self.is_main) if cfg.group_by_length else None
        self.order = DataOrder(len(self.train_items), cfg.batch_size, cfg.seed, self.rank, self.world_size,
                               lengths=lengths, group=cfg.group_by_length)

        # state
        self.step = 0  # optimizer steps done
        self.position: tuple[int, int] = (0, 0)  # data order (epoch, offset) of the next micro-batch
        self.history: dict[str, list] = {**{k: [] for k in STEP_KEYS}, "eval_step": [], "val_loss": []}
        self.last_checkpoint: Path | None = None
        self._checkpointed_step = -1
        self._paused, self._stop = threading.Event(), threading.Event()

    # -------------------------------------------------------------- public controls
    def add_callback(self, event: str, fn: Callback) -> None:
        """Register ``fn`` for ``"on_step"``, ``"on_eval"`` or ``"on_checkpoint"``."""
        if event not in self.callbacks:
            raise ValueError(f"add_callback: unknown event {event!r}; choose one of {sorted(self.callbacks)}")
        if not callable(fn):
            raise ValueError(f"add_callback: {event} must be callable, got {type(fn).__name__}")
        self.callbacks[event].append(fn)

    def pause(self) -> None:
        """Hold training after the current step until :meth:`unpause` (or :meth:`stop`)."""
        self._paused.set()

    def unpause(self) -> None:
        self._paused.clear()

    def stop(self) -> None:
        """End :meth:`fit` after the current step (a checkpoint is written first)."""
        self._stop.set()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    # -------------------------------------------------------------- the loop
    def fit(self) -> dict[str, list]:
        """Train from the current step to ``max_steps`` (or until :meth:`stop`); returns the history."""
        from tqdm.auto import tqdm

        cfg = self.config
        if self.step == 0 and not self.history["step"] and (self.out / LATEST_NAME).exists():
            raise UserError(f"{self.out} already holds a training run; resume it (load_checkpoint(), or "
                             "`mstoolkit train --resume`) or choose another out folder")
        self._stop.clear()
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.out)
            if self.step == 0 and not self.history["step"]:
                cfg.save(self.out / TRAIN_CONFIG_NAME)
                (self.out / LOG_NAME).write_text("")
        batches = iter(self._loader())
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc=f"train {cfg.model_preset}", unit="step",
                   disable=not (self.progress and self.is_main), mininterval=0.5, dynamic_ncols=True)
        try:
            while self.step < cfg.max_steps:
                while self._paused.is_set() and not self._stop.is_set():
                    time.sleep(0.05)
                if self._stop.is_set() and not self.distributed:  # (under DDP the flag travels with the step)
                    break
                metrics = self.train_step(batches)
                if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                    bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{metrics['lr']:.2e}",
                                    tok_s=f"{metrics['tokens_per_s']:.0f}", refresh=False)
                bar.update(1)
                self._call("on_step", metrics)
                if self.step == cfg.max_steps or (cfg.eval_every and self.step % cfg.eval_every == 0):
                    self.evaluate()
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0:
                    self.save_checkpoint()
                if metrics["stop"]:
                    break
            if self.step != self._checkpointed_step:  # the end, or a stop() between checkpoints
                self.save_checkpoint()
        finally:
            bar.close()
        return self.history

    def train_step(self, batches: Iterator[dict]) -> dict[str, Any]:
        """One optimizer step over ``grad_accum`` micro-batches from ``batches``; returns its metrics."""
        cfg, pad = self.config, self.model.config.pad_id
        t0 = time.perf_counter()
        lr = get_lr(self.step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        micro = [next(batches) for _ in range(cfg.grad_accum)]
        n_local = sum(int(b["target_ids"][:, 1:].ne(pad).sum()) for b in micro)
        n_tokens = float(self._all_sum(torch.tensor([n_local], dtype=torch.float64))[0])  # the step's target tokens
        module = self.ddp or self.objective
        token_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        style_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        for i, batch in enumerate(micro):
            sync = self.ddp is None or i == len(micro) - 1
            with nullcontext() if sync else self.ddp.no_sync():
                with self._autocast():
                    tokens, style = module(*self._inputs(batch))
                    # DDP averages gradients over processes: scale by world_size to get the global token mean
                    loss = tokens * (self.world_size / n_tokens) + cfg.style_loss_weight * style / cfg.grad_accum
                self.scaler.scale(loss).backward()
            token_sum += tokens.detach().double()
            style_sum += style.detach().double()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip if cfg.clip > 0 else math.inf)
        totals = self._all_sum(torch.stack([token_sum, style_sum, torch.tensor(float(self._stop.is_set()),
                                                                                dtype=torch.float64,
                                                                                device=self.device)]))
        loss_value = float(totals[0]) / n_tokens
        style_value = float(totals[1]) / (cfg.grad_accum * self.world_size)
        grad_value = float(grad_norm)
        if not math.isfinite(loss_value) or (self.precision != "fp16" and not math.isfinite(grad_value)):
            self.optimizer.zero_grad(set_to_none=True)
            what = f"loss is {loss_value}" if not math.isfinite(loss_value) else f"gradient norm is {grad_value}"
            saved = f"the last checkpoint is {self.last_checkpoint}" if self.last_checkpoint else "no checkpoint was written"
            raise NonFiniteLossError(f"step {self.step + 1}: {what}; training stopped before the update "
                                     f"({saved}). Try a lower lr, more warmup_steps, a clip, or precision fp32.")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        for _ in micro:
            self.position = self.order.advance(self.position)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - t0
        metrics = {"step": self.step, "loss": loss_value, "style_loss": style_value, "lr": lr,
                   "grad_norm": grad_value, "tokens_per_s": n_tokens / seconds, "seconds": seconds,
                   "epoch": self.position[0], "stop": bool(float(totals[2]) > 0)}
        for key in STEP_KEYS:
            self.history[key].append(metrics[key])
        if self.is_main and (self.step % cfg.log_every == 0 or self.step == cfg.max_steps):
            self._log({k: metrics[k] for k in STEP_KEYS})
        return metrics

    @torch.no_grad()
    def evaluate(self) -> dict[str, Any]:
        """Val loss over the first ``eval_samples`` val triplets (and, with ``eval_bench``, StyleBench
        scores of generated transfers on rank 0); appended to the history. Leaves the RNG untouched."""
        cfg, pad = self.config, self.model.config.pad_id
        metrics: dict[str, Any] = {"step": self.step}
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.device.index] if cuda else [], device_type="cuda"):
            self.model.eval()
            n = min(cfg.eval_samples, len(self.val_set))
            if n:
                indices = list(range(n))[self.rank::self.world_size]
                loader = torch.utils.data.DataLoader(torch.utils.data.Subset(self.val_set, indices),
                                                     batch_size=cfg.batch_size, collate_fn=collate,
                                                     num_workers=cfg.num_workers)
                sums = torch.zeros(2, dtype=torch.float64)
                for batch in loader:
                    with self._autocast():
                        tokens, _ = self.objective(*self._inputs(batch), weighted=False)  # plain CE: comparable
                    sums += torch.tensor([float(tokens), float(batch["target_ids"][:, 1:].ne(pad).sum())],
                                         dtype=torch.float64)
                sums = self._all_sum(sums)
                metrics["val_loss"] = float(sums[0] / sums[1])
            if cfg.eval_bench and self.is_main:
                metrics.update(self._bench_scores(cfg.eval_bench))
            self.model.train()
        self.history["eval_step"].append(self.step)
        self.history["val_loss"].append(metrics.get("val_loss"))
        for key, value in metrics.items():
            if key.startswith("val_") and key != "val_loss":
                self.history.setdefault(key, []).append(value)
        if self.is_main:
            self._log(metrics)
            self._call("on_eval", metrics)
        return metrics

    def _bench_scores(self, limit: int) -> dict[str, float]:
        system = transfer_system(self.model, self.tokenizer, temperature=self.config.eval_temperature,
                                 seed=self.config.seed)
        scores = run_bench(system, split="val", limit=limit, bench=self.bench, progress=False)
        keep = ("style_accuracy", "note_f1", "dtw_similarity", "content_similarity", "swing_ratio_error")
        return {f"val_{k}": scores[k] for k in keep if k in scores}

    # -------------------------------------------------------------- checkpoints
    def save_checkpoint(self) -> Path | None:
        """Write ``out/step_NNNNNN/`` atomically and point ``out/latest`` at it (rank 0; all ranks
        must call). Returns the folder (None on other ranks)."""
        cfg = self.config
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        rngs = [rng]
        if self.distributed:
            rngs = [None] * self.world_size
            dist.all_gather_object(rngs, rng)
        path = None
        if self.is_main:
            name = f"step_{self.step:06d}"
            tmp = self.out / f".tmp-{name}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            save_pretrained(self.model, tmp)
            self.tokenizer.save(tmp / TOKENIZER_NAME)
            cfg.save(tmp / TRAIN_CONFIG_NAME)
            state = {"step": self.step, "position": list(self.position), "world_size": self.world_size,
                     "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                     "rng": [{k: v.cpu() for k, v in r.items()} for r in rngs], "history": self.history,
                     "precision": self.precision}
            torch.save(state, tmp / STATE_NAME)
            path = self.out / name
            if path.exists():  # a re-run from an older checkpoint reaches this step again
                old = self.out / f".tmp-old-{name}-{os.getpid()}"
                os.replace(path, old)
                shutil.rmtree(old)
            os.replace(tmp, path)
            write_text_atomic(self.out / LATEST_NAME, name + "\n")
            self._prune_checkpoints()
            self.last_checkpoint = path
        self._checkpointed_step = self.step
        self._barrier()
        if self.is_main:
            self._call("on_checkpoint", path)
        return path

    def load_checkpoint(self, path: str | os.PathLike | None = None) -> Path:
        """Restore weights, optimizer, scaler, RNG, data position and history from ``path`` (a
        ``step_*`` folder or a run folder; default: ``latest`` of this run). All ranks must call."""
        folder = latest_checkpoint(path if path is not None else self.out)
        saved = read_config(folder / "config.json")
        if saved != self.model.config:
            diff = {k: (v, getattr(self.model.config, k)) for k, v in saved.to_dict().items()
                    if k != "activation_checkpointing" and v != self.model.config.to_dict()[k]}
            if diff:
                raise UserError(f"{folder}: the checkpoint's model differs from this config "
                                 f"(saved vs now: {diff}); resume with the run's own config")
        try:
            state = torch.load(folder / STATE_NAME, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated or foreign file
            raise UserError(f"{folder / STATE_NAME}: not a readable training state ({err})") from err
        self.model.load_state_dict(read_weights(folder / WEIGHTS_NAME))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.position = int(state["step"]), tuple(state["position"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        if state["world_size"] == self.world_size:
            rng = state["rng"][self.rank]
            torch.set_rng_state(rng["cpu"])
            if "cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        else:
            warnings.warn(f"{folder}: saved with {state['world_size']} process(es), resumed with "
                          f"{self.world_size}: the data order continues, the dropout RNG is reseeded", UserWarning)
        self.last_checkpoint, self._checkpointed_step = folder, self.step
        if self.is_main:  # the log restarts from the checkpoint (a killed run may have logged further)
            self._rewrite_log()
        return folder

    def _prune_checkpoints(self) -> None:
        folders = sorted(p for p in self.out.glob("step_*") if p.is_dir())
        for old in folders[:-self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)

    # -------------------------------------------------------------- helpers
    def close(self, *, wait_for_all: bool = False) -> None:
        """Leave the process group if this trainer created it.

        ``wait_for_all=True`` (after a run that ended normally) first meets the other processes at a
        barrier: a gloo process that tears down while its peer still talks to it can abort the peer.
        After an error, leave at once (a peer may be gone, and a barrier would wait for it).
        """
        if self._owns_process_group and dist.is_initialized():
            if wait_for_all:
                dist.barrier()
            dist.destroy_process_group()
            self._owns_process_group = False

    def _load_initial_weights(self, source: str) -> None:
        """Copy the weights of checkpoint ``source`` into the fresh model (``TrainConfig.init_from``): every
        tensor must exist in both with the same shape, else a UserError says which differ."""
        try:
            is_run = (Path(source) / LATEST_NAME).is_file()  # a run folder: its latest checkpoint
            start = load_pretrained(latest_checkpoint(source) if is_run else source)
        except (OSError, ValueError) as err:  # UserError is a ValueError
            raise UserError(f"init_from {source!r}: cannot load it ({err})") from err
        mine, theirs = self.model.state_dict(), start.state_dict()
        differ = sorted(k for k in set(mine) | set(theirs)
                        if k not in mine or k not in theirs or mine[k].shape != theirs[k].shape)
        if differ:
            raise UserError(f"init_from {source!r}: its model does not match this run's config (tensors missing or "
                            f"of another shape: {', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''}); "
                            "use the same --config and --model.* settings it was trained with")
        self.model.load_state_dict(theirs)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return make_optimizer(self.model, self.config, self.device)

    def _build_bench(self) -> StyleBench:
        build = lambda: build_stylebench(self.config.data, self.config.cache_dir,  # noqa: E731
                                         progress=self.progress and self.is_main)
        bench = build() if self.is_main else None
        self._barrier()  # rank 0 fills the caches, the others read them
        return bench if bench is not None else build()

    def _precompute_mels(self) -> None:
        """Render every reference mel of the train and val splits once (cached on disk), split between
        processes and, for many mels, between worker processes (a CPU-bound one-time job)."""
        from tqdm.auto import tqdm

        cfg = self.config
        splits = ["train"] + (["val"] if cfg.eval_samples or cfg.eval_bench else [])
        todo = sorted({(t.reference_id, t.style_b, 0, 0) for s in splits for t in self.bench.triplets[s]})
        todo += sorted({(t.reference_id, t.style_b, k, cfg.reference_transpose) for t in self.bench.triplets["train"]
                        for k in range(1, cfg.reference_timbres + 1)})  # re-instrumented (and moved) train references
        jobs = _MelJobs(self.bench, todo[self.rank::self.world_size])
        workers = max(1, (os.cpu_count() or 1) // self.world_size) if len(jobs) >= 64 else 0
        loader = torch.utils.data.DataLoader(jobs, batch_size=None, num_workers=workers if workers > 1 else 0)
        for _ in tqdm(loader, total=len(jobs), desc="reference mels", unit="mel", mininterval=1.0,
                      disable=not (self.progress and self.is_main) or len(jobs) < 2):
            pass
        self._barrier()

    def _loader(self) -> torch.utils.data.DataLoader:
        cfg = self.config
        return torch.utils.data.DataLoader(
            SeededItems(self.train_items, cfg.seed), batch_sampler=_Batches(self.order, self.position),
            collate_fn=collate, num_workers=cfg.num_workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg.seed))  # keeps the loader off the global RNG

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, ...]:
        to = dict(device=self.device, non_blocking=True)
        return (batch["content_ids"].to(**to), batch["reference_mel"].to(**to), batch["target_ids"].to(**to),
                batch["style_b"].to(**to))

    def _autocast(self):
        if self.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.distributed:
            return tensor
        on_device = tensor.to(self.device) if self.device.type == "cuda" else tensor
        dist.all_reduce(on_device)
        return on_device

    def _barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def _call(self, event: str, payload: Any) -> None:
        for fn in self.callbacks[event]:
            fn(self, payload)

    def _log(self, record: dict) -> None:
        with open(self.out / LOG_NAME, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _rewrite_log(self) -> None:
        every = self.config.log_every
        steps = [dict(zip(STEP_KEYS, row)) for row in zip(*(self.history[k] for k in STEP_KEYS))]
        steps = [r for r in steps if r["step"] % every == 0 or r is steps[-1]]
        eval_keys = [k for k in self.history if k.startswith("val_")]
        evals = [{"step": s, **{k: self.history[k][i] for k in eval_keys}}
                 for i, s in enumerate(self.history["eval_step"])]
        records = sorted(steps + evals, key=lambda r: (r["step"], "val_loss" in r))
        self.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.out / LOG_NAME, "".join(json.dumps(r) + "\n" for r in records))
