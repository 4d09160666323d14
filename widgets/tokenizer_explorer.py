"""TokenizerExplorer: see a piece as REMI tokens, check the round trip and listen to both sides."""
from __future__ import annotations

import ipywidgets as w
import plotly.graph_objects as go
from IPython.display import display

from mstoolkit import audio, viz
from mstoolkit.piece import MidiError, Piece, load_piece, sample_paths
from mstoolkit.tokenizer import RemiTokenizer

from ._common import replace_figure, show_message, uploaded_piece


class TokenizerExplorer(w.VBox):
    """Pick a shipped sample or upload a MIDI file; shows its token strip, piano roll, round trip and audio.

    >>> explorer = TokenizerExplorer(); explorer.sample.value = "bwv269"   # in a notebook: `explorer`  # doctest: +SKIP

    State for scripts and tests: ``piece`` (first ``bars`` bars of the selection), ``ids``, ``decoded``,
    ``round_trip_ok``, ``original_audio`` / ``decoded_audio`` (IPython Audio), ``status`` (messages).
    """

    def __init__(self, tokenizer: RemiTokenizer | None = None, bars: int = 4, sample: str | None = None):
        self.tokenizer = tokenizer or RemiTokenizer()
        names = sorted(sample_paths())
        self.sample = w.Dropdown(options=names, value=sample or names[0], description="Sample")
        self.upload = w.FileUpload(accept=".mid,.midi", multiple=False, description="Upload MIDI")
        self.bars = w.IntSlider(value=bars, min=1, max=16, description="Bars")
        self.status = w.HTML()
        self.round_trip = w.HTML()
        self.strip = go.FigureWidget()
        self.roll = go.FigureWidget()
        self.audio_out = w.Output()
        self.piece: Piece | None = None
        self.ids: list[int] = []
        self.decoded: Piece | None = None
        self.round_trip_ok: bool | None = None
        self.original_audio = self.decoded_audio = None
        self._source: Piece | None = None
        super().__init__([w.HBox([self.sample, self.upload, self.bars]), self.status, self.strip, self.roll,
                          self.round_trip, self.audio_out])
        self.sample.observe(self._on_sample, "value")
        self.upload.observe(self._on_upload, "value")
        self.bars.observe(lambda _: self._show(), "value")
        self._on_sample()

    def _on_sample(self, _change=None) -> None:
        if self.sample.value is None:
            show_message(self.status, "Pick a sample or upload a MIDI file.", error=True)
            return
        self._source = load_piece(sample_paths()[self.sample.value])
        self._show()

    def _on_upload(self, _change=None) -> None:
        piece = uploaded_piece(self.upload, self.status)
        if piece is not None:
            self._source = piece
            self._show()

    def _show(self) -> None:
        """Tokenize the first ``bars`` bars of the current source and refresh every view."""
        source = self._source
        if source is None or len(source) == 0:
            show_message(self.status, "This piece has no notes: nothing to tokenize.", error=True)
            return
        try:
            piece = source.slice_bars(0, self.bars.value)
            ids = self.tokenizer.encode(piece)
            decoded = self.tokenizer.decode(ids)
        except (MidiError, ValueError) as err:
            show_message(self.status, f"Could not tokenize {source.name!r}: {err}", error=True)
            return
        self.piece, self.ids, self.decoded = piece, ids, decoded
        tokens = self.tokenizer.tokens(ids)
        types = [self.tokenizer.token_types[i] for i in ids]
        replace_figure(self.strip, viz.token_strip(tokens, types, title=f"{source.name}: {len(ids)} tokens"))
        replace_figure(self.roll, viz.piano_roll(piece, title=f"{source.name}: first {self.bars.value} bars"))
        self.round_trip_ok = decoded.notes == piece.notes
        if self.round_trip_ok:
            show_message(self.round_trip, f"Round trip OK: decode(encode(piece)) gives the same {len(piece)} notes.")
        else:
            differ = len(set(decoded.notes) ^ set(piece.notes))
            show_message(self.round_trip, f"Round trip differs: {differ} notes not shared "
                         f"({len(piece)} in, {len(decoded)} out).", error=True)
        show_message(self.status, f"{source.name}: {len(piece)} notes in {self.bars.value} bars.")
        self.original_audio, self.decoded_audio = audio.play(piece), audio.play(decoded)
        self.audio_out.clear_output()
        with self.audio_out:
            display(w.HTML("<b>Original</b>"), self.original_audio, w.HTML("<b>Decoded</b>"), self.decoded_audio)
