"""mstoolkit: symbolic music style transfer with Transformers.

    >>> import mstoolkit
    >>> piece = mstoolkit.load_piece(mstoolkit.sample_paths()["bwv66.6"])   # doctest: +SKIP

Only light modules are imported here (the stdlib-only `piece` and `config`, the numpy-only
`tokenizer`), so ``import mstoolkit`` is fast; audio, data, model and training live in their own modules.
"""
from mstoolkit.config import UserError
from mstoolkit.piece import (TICKS_PER_QUARTER, MidiError, Note, Piece, TempoChange, TimeSignature, load_piece,
                             sample_paths, samples_dir)
from mstoolkit.tokenizer import RemiTokenizer, TokenizerConfig

__version__ = "0.1.0"

# Heavy names, imported on first use (PEP 562), so `import mstoolkit` stays light:
# `from mstoolkit import MusicStyleTransformer` loads torch only then.
_LAZY = {"MusicStyleTransformer": "mstoolkit.model", "ModelConfig": "mstoolkit.model"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'mstoolkit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
__all__ = ["MidiError", "Note", "Piece", "TempoChange", "TimeSignature", "TICKS_PER_QUARTER", "load_piece",
           "sample_paths", "samples_dir", "RemiTokenizer", "TokenizerConfig", "UserError"]
