"""Small helpers shared by the widgets: opening a model, figure swapping, uploads, error messages."""
from __future__ import annotations

import copy
import html
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

from mstoolkit import audio
from mstoolkit.checkpoint import load_with_tokenizer
from mstoolkit.generate import reference_mel
from mstoolkit.model import MusicStyleTransformer
from mstoolkit.piece import MidiError, Piece, load_piece
from mstoolkit.tokenizer import RemiTokenizer

MIDI_SUFFIXES = (".mid", ".midi")
UPLOAD_ACCEPT = ",".join(MIDI_SUFFIXES + audio.AUDIO_SUFFIXES)  # FileUpload(accept=...) for a style reference


def open_model(model: MusicStyleTransformer | str | os.PathLike | None,
               tokenizer: RemiTokenizer | None = None) -> tuple[MusicStyleTransformer, RemiTokenizer]:
    """``(model, tokenizer)`` for a widget, by :func:`mstoolkit.checkpoint.load_with_tokenizer` (a shipped
    name, a checkpoint or run folder, a model object, ``"debug"``); ValueError with a message for the user.

    >>> model, tokenizer = open_model("demo")
    """
    if model is None:
        raise ValueError("No model loaded: type a checkpoint (e.g. 'demo' or a training run's folder) and press Load")
    try:
        loaded, tokenizer, _ = load_with_tokenizer(model, tokenizer)
    except (FileNotFoundError, ValueError, OSError) as err:
        what = repr(os.fspath(model)) if isinstance(model, (str, os.PathLike)) else "(the model object)"
        raise ValueError(f"Could not load model {what}: {err}") from err
    return loaded, tokenizer


def replace_figure(target: go.FigureWidget, source: go.Figure) -> None:
    """Show ``source``'s traces and layout in the live ``target`` widget (one front-end update).

    >>> replace_figure(fig_widget, viz.piano_roll(piece))  # doctest: +SKIP
    """
    with target.batch_update():
        target.data = ()
        target.add_traces(list(source.data))
        target.layout = source.layout
    sync_figure_state(target)


def sync_figure_state(target: go.FigureWidget) -> None:
    """Copy ``target``'s figure into the state a front end renders from when its view starts.

    plotly sends in-place edits as one-off messages; a view that is not listening yet (its 4 MB
    front-end module still loading on a busy machine, a page opened later, a reloaded JupyterLab tab)
    misses them and would draw the figure as it was created (empty). plotly does the same copy when a
    figure is displayed on its own (``_repr_mimebundle_``), but not for one inside a Box.

    >>> sync_figure_state(fig_widget)  # doctest: +SKIP
    """
    target._widget_layout = copy.deepcopy(target._layout_obj._props)
    target._widget_data = copy.deepcopy(target._data)


def piece_from_upload(value: Sequence[dict[str, Any]]) -> Piece:
    """The first file of a ``FileUpload.value`` as a Piece; ValueError/MidiError naming the file if unreadable.

    >>> piece = piece_from_upload(upload.value)  # doctest: +SKIP
    """
    if not value:
        raise ValueError("no file uploaded")
    item = value[0]
    name = item.get("name", "upload")
    piece = load_piece(bytes(item["content"]), name=name)  # errors name the file as uploaded
    return piece.replace(name=name.rsplit(".", 1)[0])


def uploaded_piece(upload: w.FileUpload, status: w.HTML) -> Piece | None:
    """The MIDI file in ``upload`` as a Piece; None when there is none, or when it cannot be read (then
    ``status`` says why). What every widget's MIDI upload handler does first.

    >>> piece = uploaded_piece(self.upload, self.status)  # doctest: +SKIP
    """
    if not upload.value:
        return None
    try:
        return piece_from_upload(upload.value)
    except (MidiError, ValueError) as err:
        show_message(status, f"Could not read the upload: {err}", error=True)
        return None


class StyleEar:
    """What a model's style encoder hears in an uploaded reference, for the widgets that take one.

    ``recognizer``: ``"auto"`` (a :class:`~mstoolkit.recognize.StyleRecognizer` built from the model on
    first use, about half a minute once, then cached on disk; the demo's recognizer as its gate,
    ``MUSIC_GATE``), a ``StyleRecognizer``, or None (uploads are not checked: :meth:`hear` returns None).

        >>> heard = StyleEar().hear(model, reference)  # e.g. "bossa 0.97, ...", or heard.known False  # doctest: +SKIP
    """

    def __init__(self, recognizer: Any = "auto") -> None:
        self.recognizer = recognizer

    def hear(self, model: MusicStyleTransformer | None, reference: Any, on_first_use: Any = None):
        """A :class:`~mstoolkit.recognize.Heard` for ``reference`` (None without a recognizer or a model);
        ``on_first_use()`` is called before an ``"auto"`` recognizer is built (to say why it takes a while)."""
        if self.recognizer is None or model is None:
            return None
        if self.recognizer == "auto":
            from mstoolkit.recognize import MUSIC_GATE, StyleRecognizer

            if on_first_use is not None:
                on_first_use()
            self.recognizer = StyleRecognizer.from_model(model, progress=False, gate=MUSIC_GATE)
        return self.recognizer.recognize(reference)


def show_message(label: w.HTML, text: str, error: bool = False) -> None:
    """Put ``text`` into ``label`` (red when ``error``), HTML-escaped.

    >>> show_message(status, "x.mid: not a MIDI file", error=True)  # doctest: +SKIP
    """
    colour = "#b00020" if error else "#333"
    label.value = f'<span style="color:{colour}">{html.escape(text)}</span>'


def reference_from_upload(item: dict[str, Any]) -> tuple[str, Piece | np.ndarray]:
    """``(file name, reference)`` of one ``FileUpload`` item: a MIDI file as a Piece, an audio file as mono
    samples at mstoolkit's rate. ValueError / MidiError naming the file when it cannot be read.

    >>> name, reference = reference_from_upload(upload.value[0])  # doctest: +SKIP
    """
    name = item.get("name", "upload")
    data = bytes(item["content"])
    suffix = Path(name).suffix.lower()
    if suffix in MIDI_SUFFIXES:
        return name, load_piece(data, name=name)
    if suffix not in audio.AUDIO_SUFFIXES:
        raise ValueError(f"{name}: expected a MIDI file ({', '.join(MIDI_SUFFIXES)}) or audio "
                         f"({', '.join(audio.AUDIO_SUFFIXES)})")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"  # librosa reads files; the suffix picks the decoder
        path.write_bytes(data)
        try:
            return name, audio.load_audio(path)
        except ValueError as err:
            raise ValueError(f"{name}: not a readable audio file ({err})") from err


def mel_from_upload(item: dict[str, Any], n_mels: int = 128) -> tuple[str, np.ndarray]:
    """``(file name, log-mel (n_mels, frames))`` of one ``FileUpload`` item (MIDI rendered with the
    soundfont, or audio); errors as :func:`reference_from_upload`.

    >>> name, mel = mel_from_upload(upload.value[0])  # doctest: +SKIP
    """
    name, reference = reference_from_upload(item)
    return name, reference_mel(reference, n_mels=n_mels)
