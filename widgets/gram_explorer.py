"""GramExplorer: the style statistics (Gram matrices) of references side by side, and a map of many references.

The style encoder (a CNN over the log-mel spectrogram, :class:`mstoolkit.model.StyleEncoder`) turns
a reference into feature maps ``F`` of ``C`` channels over ``N`` time-frequency cells; the Gram matrix
``G = F F^T / (C N)`` (:func:`mstoolkit.losses.gram_matrix`) keeps which channels fire *together* and
forgets *where*: a statistic of texture, i.e. of style. The style loss between two references is the
mean squared difference of their Gram matrices (:func:`mstoolkit.losses.style_loss`).

The widget draws; the library computes: the stages' feature maps and Gram matrices
(:func:`mstoolkit.losses.gram_matrices`), their loss (:func:`mstoolkit.losses.gram_style_loss`), the
windows of the map (:func:`mstoolkit.data.reference_windows`) and its score
(:func:`mstoolkit.metrics.nearest_neighbour_agreement`).
"""
from __future__ import annotations

from typing import Any, Sequence

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch

from mstoolkit import viz
from mstoolkit.data import reference_windows
from mstoolkit.generate import reference_mel
from mstoolkit.losses import gram_matrices, gram_style_loss
from mstoolkit.metrics import nearest_neighbour_agreement
from mstoolkit.model import MusicStyleTransformer
from mstoolkit.piece import MidiError, load_piece, sample_paths
from mstoolkit.shipped import DEFAULT_MODEL
from mstoolkit.styles import list_styles, render_style

from ._common import UPLOAD_ACCEPT, mel_from_upload, open_model, replace_figure, show_message

EMBEDDINGS = ("style vector", "Gram matrix")  # what the map places: the model's style input, or the Gram


# ----------------------------------------------------------------------------- the widget
class GramExplorer(w.VBox):
    """Gram matrices of two or more style references (styles rendered from a sample, or uploads), their
    difference and style losses; and a PCA map of the style embeddings of many references by style.

    >>> gram = GramExplorer(styles=("swing", "waltz")); gram.layer.value = 0; gram.compute_map()

    State for scripts and tests: ``model``, ``references`` (name -> mel of the shown references),
    ``grams`` (name -> ``(C, C)`` array at the chosen layer), ``loss_matrix`` (pairwise style losses,
    rows/columns in ``names`` order), ``embeddings`` / ``labels`` (the map's points), ``status`` and
    ``map_status`` (messages).
    """

    def __init__(self, model: MusicStyleTransformer | str | None = DEFAULT_MODEL, sample: str | None = None,
                 styles: Sequence[str] = ("straight", "swing"), bars: int = 4, per_style: int = 4):
        names = sorted(sample_paths())
        self.checkpoint = w.Text(value=model if isinstance(model, str) else "", description="Checkpoint",
                                 placeholder="demo, or a run folder")
        self.load_button = w.Button(description="Load", tooltip="Load this checkpoint's style encoder")
        self.sample = w.Dropdown(options=names, value=sample or names[0], description="Sample")
        self.bars = w.IntSlider(value=bars, min=1, max=16, description="Bars")
        self.styles = w.SelectMultiple(options=list_styles(), value=tuple(styles), description="Styles", rows=5)
        self.upload = w.FileUpload(accept=UPLOAD_ACCEPT, multiple=True, description="Upload refs")
        self.layer = w.Dropdown(description="Layer")
        self.status = w.HTML()
        self.gram_fig = go.FigureWidget()
        self.loss_fig = go.FigureWidget()
        self.per_style = w.IntSlider(value=per_style, min=1, max=12, description="Per style")
        self.embedding = w.ToggleButtons(options=EMBEDDINGS, description="Map of")
        self.map_button = w.Button(description="Compute map", button_style="primary")
        self.map_status = w.HTML()
        self.map_fig = go.FigureWidget()
        self.model: MusicStyleTransformer | None = None
        self.references: dict[str, np.ndarray] = {}
        self.uploads: dict[str, np.ndarray] = {}  # "upload: name" -> mel
        self.names: list[str] = []
        self.grams: dict[str, np.ndarray] = {}
        self.loss_matrix = np.zeros((0, 0))
        self.embeddings = np.zeros((0, 0))
        self.labels: list[str] = []
        self._mels: dict[tuple, np.ndarray] = {}  # (sample, first bar, bars, style) -> mel
        self._grams: dict[tuple, list[np.ndarray]] = {}  # (reference key) -> Gram per stage
        self._loading = False  # True while set_model fills the layer list (no half-done updates)
        super().__init__([
            w.HBox([self.checkpoint, self.load_button]),
            w.HBox([self.sample, self.bars, self.styles]),
            w.HBox([self.upload, self.layer]),
            self.status, self.gram_fig, self.loss_fig,
            w.HTML("<b>Map of many references</b> (each style rendered from several sample windows)"),
            w.HBox([self.per_style, self.embedding, self.map_button]), self.map_status, self.map_fig,
        ])
        for control in (self.sample, self.bars, self.styles, self.layer):
            control.observe(self._update, "value")
        self.upload.observe(self._on_upload, "value")
        self.load_button.on_click(lambda _: self.set_model(self.checkpoint.value.strip() or None))
        self.map_button.on_click(lambda _: self.compute_map())
        self.set_model(model)

    # ------------------------------------------------------------------ inputs
    def set_model(self, model: MusicStyleTransformer | str | None) -> None:
        """Use ``model``'s style encoder (a model, a checkpoint folder or shipped name; None: no model)."""
        self.model, self._grams, self._mels = None, {}, {}  # mels too: another model may want other bands
        try:
            self.model = model.eval() if isinstance(model, MusicStyleTransformer) else open_model(model)[0]
        except ValueError as err:
            self._clear()
            show_message(self.status, str(err), error=True)
            return
        stages = [m for m in self.model.style_encoder.net if isinstance(m, torch.nn.Conv2d)]
        options = [(f"conv {i + 1} ({conv.out_channels} channels)", i) for i, conv in enumerate(stages)]
        keep = self.layer.value if self.layer.value is not None and self.layer.value < len(options) else None
        self._loading = True
        try:
            self.layer.options = options
            self.layer.value = len(options) - 1 if keep is None else keep
        finally:
            self._loading = False
        self._update()

    def _on_upload(self, _change=None) -> None:
        self.uploads = {}
        problems = []
        n_mels = self.model.config.n_mels if self.model is not None else 128
        for item in self.upload.value:
            try:
                name, mel = mel_from_upload(item, n_mels=n_mels)
            except (MidiError, ValueError) as err:
                problems.append(str(err))
                continue
            self.uploads[f"upload: {name}"] = mel
        self._update()
        if problems:
            show_message(self.status, "Could not read the upload: " + "; ".join(problems), error=True)

    def _style_mel(self, sample: str, first_bar: int, bars: int, style: str) -> np.ndarray:
        """The log-mel of ``bars`` bars of a sample rendered in ``style`` (cached)."""
        key = (sample, first_bar, bars, style)
        if key not in self._mels:
            piece = load_piece(sample_paths()[sample]).slice_bars(first_bar, bars)
            self._mels[key] = reference_mel(render_style(piece, style), n_mels=self._n_mels())
        return self._mels[key]

    def _n_mels(self) -> int:
        return self.model.config.n_mels if self.model is not None else 128

    def _grams_of(self, key: Any, mel: np.ndarray) -> list[np.ndarray]:
        if key not in self._grams:
            self._grams[key] = gram_matrices(self.model.style_encoder, mel)
        return self._grams[key]

    # ------------------------------------------------------------------ Gram panel
    def _clear(self) -> None:
        self.references, self.grams, self.names, self.loss_matrix = {}, {}, [], np.zeros((0, 0))
        replace_figure(self.gram_fig, go.Figure())
        replace_figure(self.loss_fig, go.Figure())

    def _update(self, _change=None) -> None:
        """Recompute the Gram matrices of the chosen references at the chosen layer and the losses."""
        if self._loading:
            return
        if self.model is None:
            self._clear()
            show_message(self.status, "No model loaded: type a checkpoint (e.g. 'demo') and press Load.", error=True)
            return
        if self.sample.value is None and self.styles.value:
            self._clear()
            show_message(self.status, "Pick a sample to render the styles from.", error=True)
            return
        references: dict[str, np.ndarray] = {}
        try:
            for style in self.styles.value:
                references[style] = self._style_mel(self.sample.value, 0, self.bars.value, style)
        except (MidiError, ValueError) as err:
            self._clear()
            show_message(self.status, f"Could not render the references: {err}", error=True)
            return
        references.update(self.uploads)
        if not references:
            self._clear()
            show_message(self.status, "Pick at least two references: styles, or upload MIDI / audio files.",
                         error=True)
            return
        layer = self.layer.value
        self.references, self.names = references, list(references)
        self.grams = {name: self._grams_of(self._key(name), mel)[layer] for name, mel in references.items()}
        n = len(self.names)
        self.loss_matrix = np.array([[gram_style_loss(self.grams[a], self.grams[b]) for b in self.names]
                                     for a in self.names])  # (N, N), symmetric, 0 on the diagonal
        label = self.layer.label
        replace_figure(self.gram_fig, viz.gram_figure(self.grams, title=f"Gram matrices, {label}"))
        replace_figure(self.loss_fig, viz.style_loss_matrix(self.loss_matrix, self.names,
                                                            title="style loss mean((G_a - G_b)^2)"))
        if n == 1:
            show_message(self.status, f"One reference ({self.names[0]}): add a second style or upload to compare.")
        elif n == 2:
            show_message(self.status, f"Style loss between {self.names[0]} and {self.names[1]} at {label}: "
                         f"{self.loss_matrix[0, 1]:.4g}")
        else:
            i, j = np.unravel_index(np.argmax(self.loss_matrix), self.loss_matrix.shape)
            show_message(self.status, f"{n} references at {label}; most different: {self.names[i]} vs "
                         f"{self.names[j]} (style loss {self.loss_matrix[i, j]:.4g}).")

    def _key(self, name: str) -> tuple:
        if name in self.uploads:
            return ("upload", name, id(self.uploads[name]))
        return (self.sample.value, 0, self.bars.value, name)

    # ------------------------------------------------------------------ map
    def compute_map(self) -> None:
        """Embed ``per_style`` windows of the samples in every chosen style (all styles if none is chosen),
        plus the uploads, and draw the PCA map coloured by style."""
        if self.model is None:
            show_message(self.map_status, "No model loaded: nothing to embed.", error=True)
            return
        styles = list(self.styles.value) or list_styles()
        windows = reference_windows(self.per_style.value, self.bars.value)
        if not windows:
            show_message(self.map_status, f"No sample has {self.bars.value} bars: choose fewer bars.", error=True)
            return
        show_message(self.map_status, f"Rendering {len(styles) * len(windows)} references...")
        vectors, labels = [], []
        use_gram = self.embedding.value == "Gram matrix"
        try:
            for style in styles:
                for sample, first in windows:
                    mel = self._style_mel(sample, first, self.bars.value, style)
                    vectors.append(self._embed((sample, first, self.bars.value, style), mel, use_gram))
                    labels.append(style)
        except (MidiError, ValueError) as err:
            show_message(self.map_status, f"Could not render the references: {err}", error=True)
            return
        for name, mel in self.uploads.items():
            vectors.append(self._embed(self._key(name), mel, use_gram))
            labels.append(name)
        if len(vectors) < 2:
            show_message(self.map_status, "A map needs at least two references.", error=True)
            return
        self.embeddings, self.labels = np.stack(vectors), labels  # (N, D)
        what = f"Gram matrices at {self.layer.label}" if use_gram else "style vectors"
        replace_figure(self.map_fig, viz.style_embedding_map(self.embeddings, labels,
                                                             title=f"PCA of {len(labels)} {what}"))
        show_message(self.map_status, f"{len(labels)} references, {len(windows)} windows x {len(styles)} styles; "
                     f"nearest-neighbour style agreement {nearest_neighbour_agreement(self.embeddings, labels):.0%} "
                     "(how often a reference's closest other reference has its style).")

    def _embed(self, key: tuple, mel: np.ndarray, use_gram: bool) -> np.ndarray:
        if use_gram:
            gram = self._grams_of(key, mel)[self.layer.value]
            return gram[np.triu_indices(len(gram))]  # (C (C + 1) / 2,): a Gram is symmetric
        return self.model.style_encoder.embed(mel).float().cpu().numpy()  # (d_style,)
