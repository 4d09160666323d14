"""StyleGallery: one piece rendered in every style, each with piano roll, mel spectrogram and audio."""
from __future__ import annotations

from typing import Any, Sequence

import ipywidgets as w
import plotly.graph_objects as go
from IPython.display import display

from mstoolkit import audio, viz
from mstoolkit.piece import Piece, load_piece, sample_paths
from mstoolkit.styles import list_styles, render_style

from ._common import show_message


class StyleGallery(w.VBox):
    """A sample's first ``bars`` bars in each chosen style, one tab per style, rendered when its tab opens.

    >>> gallery = StyleGallery(styles=["straight", "swing"]); gallery.tabs.selected_index = 1  # doctest: +SKIP

    State for scripts and tests: ``piece`` (the content), ``rendered`` (style name -> Piece, only the
    tabs opened so far), ``figures`` (style name -> (piano roll, mel) FigureWidgets), ``audios``,
    ``status`` (messages).
    """

    def __init__(self, sample: str | None = None, styles: Sequence[str] | None = None, bars: int = 4):
        names = sorted(sample_paths())
        all_styles = list_styles()
        self.sample = w.Dropdown(options=names, value=sample or names[0], description="Sample")
        self.styles = w.SelectMultiple(options=all_styles, value=tuple(styles or all_styles),
                                       description="Styles", rows=min(len(all_styles), 5))
        self.bars = w.IntSlider(value=bars, min=1, max=16, description="Bars")
        self.status = w.HTML()
        self.tabs = w.Tab()
        self.piece: Piece | None = None
        self.rendered: dict[str, Piece] = {}
        self.figures: dict[str, tuple[go.FigureWidget, go.FigureWidget]] = {}
        self.audios: dict[str, Any] = {}  # style name -> IPython Audio
        self.shown: list[str] = []  # style name of each tab
        super().__init__([w.HBox([self.sample, self.styles, self.bars]), self.status, self.tabs])
        for control in (self.sample, self.styles, self.bars):
            control.observe(self._rebuild, "value")
        self.tabs.observe(self._on_tab, "selected_index")
        self._rebuild()

    def _rebuild(self, _change=None) -> None:
        """New content or style choice: empty tabs, then render the one that is open."""
        self.rendered, self.figures, self.audios = {}, {}, {}
        chosen = self.shown = list(self.styles.value)
        if self.sample.value is None or not chosen:
            self.tabs.children = ()
            show_message(self.status, "Pick a sample and at least one style.", error=True)
            return
        self.piece = load_piece(sample_paths()[self.sample.value]).slice_bars(0, self.bars.value)
        self.tabs.children = [w.VBox() for _ in chosen]
        self.tabs.titles = tuple(chosen)
        show_message(self.status, f"{self.sample.value}, first {self.bars.value} bars, in {len(chosen)} styles "
                     "(each tab renders when opened).")
        if self.tabs.selected_index != 0:
            self.tabs.selected_index = 0  # triggers _on_tab
        else:
            self._on_tab()

    def _on_tab(self, _change=None) -> None:
        index = self.tabs.selected_index
        if index is None or index >= len(self.shown):
            return
        name = self.shown[index]
        if name not in self.rendered:
            self._render(name, self.tabs.children[index])

    def _render(self, name: str, panel: w.VBox) -> None:
        try:
            styled = render_style(self.piece, name)
        except ValueError as err:
            show_message(self.status, f"Could not render style {name!r}: {err}", error=True)
            return
        wave = audio.render(styled)
        roll = go.FigureWidget(viz.piano_roll(styled, title=f"{self.piece.name} in {name}"))
        spec = go.FigureWidget(viz.mel_figure(audio.mel(wave), title=f"log-mel spectrogram ({name})"))
        player = audio.play(wave)
        out = w.Output()
        with out:
            display(player)
        panel.children = [roll, spec, out]
        self.rendered[name], self.figures[name], self.audios[name] = styled, (roll, spec), player
