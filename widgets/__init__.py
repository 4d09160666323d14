"""Interactive Jupyter widgets for mstoolkit (the only layer that imports ipywidgets).

>>> from mstoolkit.widgets import TokenizerExplorer, StyleGallery
"""
from .style_gallery import StyleGallery
from .tokenizer_explorer import TokenizerExplorer

__all__ = ["StyleGallery", "TokenizerExplorer"]
