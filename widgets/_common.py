"""Small helpers shared by the widgets: figure swapping, uploads, error messages."""
from __future__ import annotations

import html
from typing import Any, Sequence

import ipywidgets as w
import plotly.graph_objects as go

from mstoolkit.piece import Piece, load_piece


def replace_figure(target: go.FigureWidget, source: go.Figure) -> None:
    """Show ``source``'s traces and layout in the live ``target`` widget (one front-end update).

    >>> replace_figure(fig_widget, viz.piano_roll(piece))
    """
    with target.batch_update():
        target.data = ()
        target.add_traces(list(source.data))
        target.layout = source.layout


def piece_from_upload(value: Sequence[dict[str, Any]]) -> Piece:
    """The first file of a ``FileUpload.value`` as a Piece; ValueError/MidiError naming the file if unreadable.

    >>> piece = piece_from_upload(upload.value)
    """
    if not value:
        raise ValueError("no file uploaded")
    item = value[0]
    name = item.get("name", "upload")
    piece = load_piece(bytes(item["content"]), name=name)  # errors name the file as uploaded
    return piece.replace(name=name.rsplit(".", 1)[0])


def show_message(label: w.HTML, text: str, error: bool = False) -> None:
    """Put ``text`` into ``label`` (red when ``error``), HTML-escaped.

    >>> show_message(status, "x.mid: not a MIDI file", error=True)
    """
    colour = "#b00020" if error else "#333"
    label.value = f'<span style="color:{colour}">{html.escape(text)}</span>'
