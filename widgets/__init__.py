"""Interactive Jupyter widgets for mstoolkit (the only layer that imports ipywidgets)."""
