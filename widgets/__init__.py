"""Interactive Jupyter widgets for mstoolkit (the only layer that imports ipywidgets).

>>> from mstoolkit.widgets import TokenizerExplorer, StyleGallery

Each widget lives in its own module and is imported on first use, so importing one widget does not
pay for the others (and a notebook that only explores tokens never loads the model code).
"""
from __future__ import annotations

import importlib
from typing import Any

_MODULES = {  # public name -> module in this package
    "TokenizerExplorer": "tokenizer_explorer",
    "StyleGallery": "style_gallery",
    "TrainingDashboard": "training_dashboard",
    "AttentionExplorer": "attention_explorer",
    "GramExplorer": "gram_explorer",
    "TransferStudio": "transfer_studio",
    "LiveSwitch": "live_switch",
}

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'mstoolkit.widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
