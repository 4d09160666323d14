"""Model checkpoints: ``config.json`` + ``model.safetensors`` (no pickle: loading never runs code from
the file), shipped checkpoints by name, the in-memory ``"debug"`` model, and CPU int8 quantization.

    >>> folder = save_pretrained(model, "runs/swing")             # or model.save_pretrained(...)
    >>> model = load_pretrained("runs/swing")                     # or MusicStyleTransformer.from_pretrained
    >>> model = load_pretrained("demo")                           # shipped: data_samples/checkpoints/demo/
    >>> small = quantize_int8(model)                              # CPU inference, Linear layers in int8
    >>> model, tokenizer, folder = load_with_tokenizer("runs/swing")  # a run folder: its latest checkpoint
    >>> history = read_log("runs/swing")                          # a run's log.jsonl  # doctest: +SKIP

A checkpoint directory holds ``config.json`` (``{"format": "mstoolkit.MusicStyleTransformer",
"version": 1, "dtype": "float32", "config": {...ModelConfig...}}``) and ``model.safetensors``.
Anything wrong in either file (bad JSON, unknown config fields, a truncated or non-safetensors
file, missing or unexpected tensors, wrong shapes) raises ValueError naming the file and the reason.

A training run folder (written by :class:`mstoolkit.train.Trainer`; its layout lives here, so that
opening a trained model never imports the trainer)::

    runs/swing/
        train_config.json        TRAIN_CONFIG_NAME: the run's TrainConfig
        log.jsonl                LOG_NAME: one JSON record per logged step (STEP_KEYS) or validation
        latest                   LATEST_NAME: the name of the newest checkpoint folder
        step_000400/             a checkpoint: config.json, model.safetensors, tokenizer.json
                                 (TOKENIZER_NAME), train_config.json, train_state.pt (STATE_NAME)

Files are written atomically (:func:`write_text_atomic`; checkpoint folders are renamed into place),
so a run killed at any moment leaves the previous checkpoint and ``latest`` intact; the temporaries a
killed run leaves behind are named ``.tmp-*`` (:func:`remove_stale_temporaries`).
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from mstoolkit.config import UserError
from mstoolkit.model import ModelConfig, MusicStyleTransformer

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
FORMAT, VERSION = "mstoolkit.MusicStyleTransformer", 1
SHIPPED_DIR: Path | None = None  # where shipped checkpoints live; None: the package's (mstoolkit.shipped)
# the run-folder layout (see the module docstring)
STATE_NAME, TRAIN_CONFIG_NAME, TOKENIZER_NAME, LATEST_NAME = "train_state.pt", "train_config.json", "tokenizer.json", "latest"
LOG_NAME = "log.jsonl"
STEP_KEYS = ("step", "loss", "style_loss", "lr", "grad_norm", "tokens_per_s", "epoch")  # a training step's log record


def shipped_dir() -> Path:
    """The folder of the shipped checkpoints: ``checkpoints/`` of the installed ``mstoolkit.data_samples``."""
    if SHIPPED_DIR is not None:
        return SHIPPED_DIR
    from mstoolkit.shipped import shipped_root

    return shipped_root() / "checkpoints"


def save_pretrained(model: MusicStyleTransformer, directory: str | os.PathLike, *,
                    dtype: torch.dtype | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed).

    ``dtype`` (e.g. ``torch.float16``) stores the weights in that precision: half the size of float32.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype or v.dtype).contiguous() for k, v in model.state_dict().items()}
    dtype_name = str(dtype or model.target_emb.weight.dtype).removeprefix("torch.")
    meta = {"format": FORMAT, "version": VERSION, "dtype": dtype_name, "config": model.config.to_dict()}
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def resolve(path_or_name: str | os.PathLike) -> Path:
    """A checkpoint directory: ``path_or_name`` itself, or the shipped checkpoint of that name
    (``data_samples/checkpoints/<name>``, installed in the package: see :func:`shipped_dir`)."""
    path = Path(path_or_name)
    if path.is_dir():
        return path
    folder = shipped_dir()
    shipped = folder / str(path_or_name)
    if shipped.is_dir():
        return shipped
    available = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    raise FileNotFoundError(f"checkpoint {str(path_or_name)!r}: not a directory, and not a shipped checkpoint "
                            f"in {folder} (available: {available or 'none'}; 'debug' builds a random "
                            "test model in memory)")


def load_pretrained(path_or_name: str | os.PathLike, *, device: str | torch.device = "cpu",
                    dtype: torch.dtype | None = None) -> MusicStyleTransformer:
    """Load a checkpoint directory or shipped name; ``"debug"`` builds the tiny test model in memory.

    The model is returned in eval mode, in float32 unless ``dtype`` is given (float16 weights are
    up-cast, so a half-size file serves CPU inference too).
    """
    if str(path_or_name) == "debug":
        return debug_model().to(device=device, dtype=dtype)
    directory = resolve(path_or_name)
    config = read_config(directory / CONFIG_NAME)
    state = read_weights(directory / WEIGHTS_NAME)
    model = MusicStyleTransformer(config)
    expected = model.state_dict()
    weights = directory / WEIGHTS_NAME
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise UserError(f"{weights}: tensors do not match the model in {CONFIG_NAME}: "
                         f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                         f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
             for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        raise UserError(f"{weights}: tensor shapes do not match the model in {CONFIG_NAME}: {wrong[:5]}")
    not_float = [k for k, v in state.items() if not v.is_floating_point()]
    if not_float:
        raise UserError(f"{weights}: expected floating-point tensors, got {not_float[:5]}")
    model.load_state_dict(state)
    return model.to(device=device, dtype=dtype or torch.float32).eval()


def load_with_tokenizer(model: str | os.PathLike | MusicStyleTransformer, tokenizer=None, *,
                        device: str | torch.device = "cpu"):
    """``(model in eval mode, its RemiTokenizer, its folder or None)``: the one way the CLI and the
    widgets open a model.

    ``model``: a shipped name (``"demo"``), a checkpoint folder, a training run folder (its latest
    checkpoint), a model object, or ``"debug"`` (an untrained in-memory model). The tokenizer is the
    one given, else the ``tokenizer.json`` saved beside the checkpoint, else the default REMI tokenizer.
    FileNotFoundError / ValueError name what is missing or wrong; ValueError too when the model's
    vocabulary does not match the tokenizer's.

        >>> model, tokenizer, folder = load_with_tokenizer("demo")
    """
    from mstoolkit.tokenizer import RemiTokenizer

    folder = None
    if isinstance(model, MusicStyleTransformer):
        loaded = model.to(device)
    elif str(model) == "debug":
        tokenizer = tokenizer or RemiTokenizer()
        loaded = debug_model(vocab_size=tokenizer.vocab_size).to(device)
    else:
        folder = Path(model)
        if folder.is_dir() and not (folder / CONFIG_NAME).is_file():
            folder = latest_checkpoint(folder)  # a run folder
        else:
            folder = resolve(model)
        loaded = load_pretrained(folder, device=device)
    if tokenizer is None:
        saved = folder / TOKENIZER_NAME if folder is not None else None
        tokenizer = RemiTokenizer.load(saved) if saved is not None and saved.is_file() else RemiTokenizer()
    if tokenizer.vocab_size != loaded.config.vocab_size:
        where = f"{folder}: " if folder is not None else ""
        raise UserError(f"{where}the tokenizer has {tokenizer.vocab_size} tokens but the model expects "
                         f"{loaded.config.vocab_size}: use the tokenizer the model was trained with")
    return loaded.eval(), tokenizer, folder


def read_config(path: Path) -> ModelConfig:
    """The :class:`ModelConfig` of a ``config.json``; ValueError naming the file on any problem."""
    if not path.is_file():
        raise UserError(f"{path}: missing (a checkpoint needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("config"), dict):
        raise UserError(f"{path}: not an mstoolkit model config (expected format {FORMAT!r} and a 'config' object)")
    if meta.get("version") != VERSION:
        raise UserError(f"{path}: config version {meta.get('version')!r}, this mstoolkit reads version {VERSION}")
    try:
        return ModelConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as err:
        raise UserError(f"{path}: invalid model config: {err}") from err


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (CPU); ValueError naming the file if it is missing or unreadable."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserError(f"{path}: missing (a checkpoint needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for truncated or foreign files
        raise UserError(f"{path}: not a readable safetensors file ({type(err).__name__}: {err})") from err


def debug_model(**overrides) -> MusicStyleTransformer:
    """The ``"debug"`` preset with fixed random weights (seed 0), built in memory, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return MusicStyleTransformer(ModelConfig.preset("debug", **overrides)).eval()


def quantize_int8(model: MusicStyleTransformer) -> nn.Module:
    """A copy for CPU inference with every ``nn.Linear`` in dynamic int8 (weights int8, activations
    quantized on the fly) via ``torch.ao.quantization.quantize_dynamic``; the embeddings, the tied
    output head and the style CNN stay float32. The source model is unchanged.

    ``torch.ao.quantization`` is deprecated in recent PyTorch in favour of ``torchao``; its warnings
    are silenced here.
    """
    import copy

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated.*")
        return quantize_dynamic(copy.deepcopy(model).float().cpu().eval(), {nn.Linear}, dtype=torch.qint8)


def state_size_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights as held in memory (packed int8 weights included)."""
    total = 0
    for value in model.state_dict().values():
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif isinstance(value, tuple):  # packed params of quantized Linear: (weight, bias)
            total += sum(t.numel() * t.element_size() for t in value if isinstance(t, torch.Tensor))
    return total


# ----------------------------------------------------------------------------- run folders
def latest_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint folder of ``path``: a ``step_*`` folder itself, or the one a run folder's
    ``latest`` file names. ValueError if there is none."""
    path = Path(path)
    if (path / STATE_NAME).is_file():
        return path
    pointer = path / LATEST_NAME
    if pointer.is_file():
        folder = path / pointer.read_text().strip()
        if (folder / STATE_NAME).is_file():
            return folder
        raise UserError(f"{pointer} names {folder.name}, which is missing or incomplete")
    raise UserError(f"{path}: holds no checkpoint (no {LATEST_NAME} file and no {STATE_NAME})")


def read_log(folder: str | os.PathLike) -> dict[str, list]:
    """The history a run folder's ``log.jsonl`` holds, shaped like ``Trainer.history``: one list per
    :data:`STEP_KEYS` key (the logged training steps; a key a record lacks reads None), and
    ``"eval_step"``, ``"val_loss"`` plus any other ``val_*`` score (the validations). ValueError if
    the folder has no log or a line is not JSON.

        >>> history = read_log(resolve("demo"))
        >>> history["step"][:3], len(history["step"]) == len(history["grad_norm"])
        ([1, 2, 3], True)
        >>> history["eval_step"][:2]
        [500, 1000]
    """
    path = Path(folder) / LOG_NAME
    if not path.is_file():
        raise UserError(f"{path}: no training log here")
    history: dict[str, list] = {**{k: [] for k in STEP_KEYS}, "eval_step": [], "val_loss": []}
    evals = 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}, line {number}: not JSON ({err})") from err
        if "loss" in record:  # a training step
            for key in STEP_KEYS:
                history[key].append(record.get(key))
        else:  # a validation: val_loss and/or generated-transfer scores
            history["eval_step"].append(record["step"])
            for key in {"val_loss", *(k for k in record if k.startswith("val_"))}:
                history.setdefault(key, [None] * evals).append(record.get(key))
            evals += 1
            for key in history:  # a score missing from this record (but seen before) reads None
                if key.startswith("val_") and len(history[key]) < evals:
                    history[key].append(None)
    return history


def remove_stale_temporaries(out: Path) -> None:
    """Delete the half-written files and checkpoint folders (``.tmp-*``) a killed run left in ``out``."""
    for tmp in out.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place: a reader (or a run killed
    mid-write) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
