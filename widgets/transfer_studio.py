"""TransferStudio: pick a content piece and a style, generate, then see, hear and score the transfer.

The style comes either from a named StyleBench style, whose *reference* is another shipped piece
rendered in that style (so the model hears a different piece in the wanted idiom, as in training),
or from an uploaded reference (audio or MIDI). For a named style the rule renderer also gives the
ground truth, so the result is scored with StyleBench's measures against it.

What people bring is read the way ``mstoolkit transfer`` reads it: an uploaded MIDI file goes through
:func:`mstoolkit.intake.intake` (drum tracks kept aside and laid back over the result, a performance
without a click re-timed on estimated beats), and the status line gives its one-line account; an
uploaded reference is heard by the model's own style encoder first
(:class:`mstoolkit.recognize.StyleRecognizer`), which names the styles it hears, and a reference that
matches none (speech, noise, silence) is refused with that message instead of silently picking one.
"""
from __future__ import annotations

import dataclasses
import html
import os
import time
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

from mstoolkit import audio, metrics, viz
from mstoolkit.config import TRANSFER_TEMPERATURE
from mstoolkit.model import MusicStyleTransformer
from mstoolkit.bench import sample_style_classifier
from mstoolkit.data import style_reference
from mstoolkit.intake import Intake, intake
from mstoolkit.piece import MidiError, Piece, load_piece, sample_paths
from mstoolkit.shipped import DEFAULT_MODEL
from mstoolkit.styles import list_styles, render_style
from mstoolkit.tokenizer import RemiTokenizer

from ._common import UPLOAD_ACCEPT, StyleEar, open_model, reference_from_upload, replace_figure, show_message

REFERENCE_SECONDS = 12  # an uploaded audio reference is cut to what training references last (512 mel frames)
CORPUS_SUGGESTIONS = ("bach/bwv66.6", "bach/bwv1.6", "bach/bwv10.7", "bach/bwv26.6", "bach/bwv40.8",
                      "bach/bwv153.1", "bach/bwv244.10")
# (key, label, better) rows of the score table; "better" says which way is good
SCORE_ROWS = (
    ("note_f1", "note F1 vs the rule-rendered target", "higher"),
    ("dtw_similarity", "chroma-DTW similarity to the target", "higher"),
    ("content_similarity", "content kept (chroma vs the content)", "higher"),
    ("style_profile_similarity", "rhythm/dynamics profile vs the reference", "higher"),
    ("swing_ratio_error", "swing-ratio error", "lower"),
    ("polyphony", "notes sounding at once", ""),
)
# (class, label, better) rows of the error breakdown (metrics.error_breakdown), shown as note counts
BREAKDOWN_ROWS = (
    ("exact", "output notes exact (pitch and onset)", "higher"),
    ("octave", "output notes an octave off", "lower"),
    ("wrong_pitch", "output notes at a right onset, wrong pitch", "lower"),
    ("timing", "output notes of right pitch, onset off (<= 1 beat)", "lower"),
    ("other", "other output notes", "lower"),
    ("missed", "target notes missed", "lower"),
)
CSS = """<style>
.mst-studio .widget-label, .mst-studio .widget-readout, .mst-studio .widget-toggle-buttons button,
.mst-studio select, .mst-studio input, .mst-studio .widget-html-content {font-size: 15px;}
.mst-studio .mst-generate {font-size: 18px; font-weight: bold; height: 48px;}
.mst-studio table.mst-scores td, .mst-studio table.mst-scores th {padding: 2px 12px; text-align: right;}
.mst-studio table.mst-scores td:first-child {text-align: left;}
</style>"""


class TransferStudio(w.VBox):
    """Content + style + sampling settings -> Generate -> piano rolls, A/B audio and StyleBench scores.

        >>> studio = TransferStudio(model="demo"); studio     # in a notebook; or studio.generate()  # doctest: +SKIP

    ``model``: ``"demo"`` (the shipped checkpoint), a checkpoint or run folder, a
    :class:`~mstoolkit.model.MusicStyleTransformer` (with ``tokenizer``), ``"debug"`` (untrained) or
    None (the studio then says that no model is loaded). ``bars``: how many bars of the content are
    transferred (a few seconds on a laptop CPU for 4-8 bars).

    State for scripts and tests: ``content``, ``reference`` (a Piece, or audio samples for an audio
    upload), ``target`` (the rule-rendered ground truth for a named style, else None), ``result``
    (the generated Piece), ``figures`` (``"content"``/``"result"`` piano-roll FigureWidgets),
    ``audios`` (``"content"``, ``"result"``, ``"target"``, ``"reference"``: IPython Audio),
    ``metrics`` (scores of the result), ``baseline_metrics`` (the content copied unchanged),
    ``breakdown`` and ``baseline_breakdown`` (:func:`~mstoolkit.metrics.error_breakdown` of each
    against the target; empty without one), ``predicted_style``, ``seconds`` (generation time),
    ``intake`` (the :class:`~mstoolkit.intake.Intake` of an uploaded content file), ``heard`` (what
    the style encoder heard in an uploaded reference, a :class:`~mstoolkit.recognize.Heard`) and
    ``status`` (messages).

    ``recognizer``: ``"auto"`` (default: built from the model on the first reference upload, about
    half a minute once, then cached on disk), a :class:`~mstoolkit.recognize.StyleRecognizer`, or None
    (uploaded references are used without being checked).
    """

    def __init__(self, model: str | os.PathLike | MusicStyleTransformer | None = DEFAULT_MODEL, *,
                 tokenizer: RemiTokenizer | None = None, sample: str = "bwv66.6", style: str = "swing",
                 bars: int = 4, temperature: float = TRANSFER_TEMPERATURE, top_p: float = 0.95, seed: int = 0,
                 classify: bool = True, recognizer: Any = "auto"):
        self.model: MusicStyleTransformer | None = None
        self.tokenizer: RemiTokenizer | None = tokenizer
        self.model_name = "a model object" if isinstance(model, MusicStyleTransformer) else str(model)
        self.classify = classify
        self.content: Piece | None = None
        self.reference: Piece | np.ndarray | None = None
        self.target: Piece | None = None
        self.result: Piece | None = None
        self.metrics: dict[str, Any] = {}
        self.baseline_metrics: dict[str, Any] = {}
        self.breakdown: dict[str, int] = {}
        self.baseline_breakdown: dict[str, int] = {}
        self.predicted_style: str | None = None
        self.seconds: float | None = None
        self.audios: dict[str, Any] = {}
        self.intake: Intake | None = None
        self.heard = None
        self._ear = StyleEar(recognizer)
        self._reference_upload: tuple[str, Piece | np.ndarray] | None = None
        self._corpus_cache: dict[str, Piece] = {}

        wide, box = {"description_width": "110px"}, w.Layout(width="340px")
        names = sorted(sample_paths())
        # content
        self.content_source = w.ToggleButtons(options=[("Sample", "sample"), ("music21 corpus", "corpus"),
                                                       ("Upload", "upload")], value="sample", style={"button_width": "104px"})
        self.sample = w.Dropdown(options=names, value=sample if sample in names else names[0], description="Sample",
                                 style=wide, layout=box)
        self.corpus = w.Combobox(options=CORPUS_SUGGESTIONS, value="bach/bwv66.6", description="Corpus piece",
                                 placeholder="e.g. bach/bwv66.6", ensure_option=False, continuous_update=False,
                                 style=wide, layout=box)
        self.upload = w.FileUpload(accept=".mid,.midi", multiple=False, description="Upload MIDI")
        self.bars = w.IntSlider(value=bars, min=1, max=16, description="Bars", style=wide, layout=box)
        # style
        self.style_source = w.ToggleButtons(options=[("Named style", "named"), ("Reference upload", "upload")],
                                            value="named", style={"button_width": "150px"})
        styles = list_styles()
        self.style = w.Dropdown(options=styles, value=style if style in styles else styles[0], description="Style",
                                style=wide, layout=box)
        self.reference_upload = w.FileUpload(accept=UPLOAD_ACCEPT, multiple=False,
                                             description="Reference")
        # sampling
        self.temperature = w.FloatSlider(value=temperature, min=0.0, max=1.5, step=0.05, description="Temperature",
                                         style=wide, layout=box, tooltip="0 = always the most likely token")
        self.top_p = w.FloatSlider(value=top_p, min=0.05, max=1.0, step=0.05, description="Top-p", style=wide,
                                   layout=box, tooltip="sample from the smallest set of tokens holding this probability")
        self.seed = w.IntText(value=seed, description="Seed", style=wide, layout=w.Layout(width="220px"))
        self.keep_harmony = w.Checkbox(value=False, description="Keep the content's harmony", indent=False,
                                       tooltip="each note may only take a pitch class the content sounds within a "
                                               "beat of it (mstoolkit.harmony)")
        self.generate_button = w.Button(description="Generate", button_style="primary", icon="music",
                                        layout=w.Layout(width="320px", height="48px"))
        self.generate_button.add_class("mst-generate")
        # results
        self.status = w.HTML()
        self.figures = {"content": go.FigureWidget(), "result": go.FigureWidget()}
        self.audio_box = w.HTML()
        self.score_box = w.HTML()

        def panel(title: str, *children: w.Widget) -> w.VBox:
            return w.VBox([w.HTML(f"<h3 style='margin:4px 0'>{title}</h3>"), *children],
                          layout=w.Layout(padding="6px 12px", border="1px solid #ddd", margin="0 8px 0 0"))

        controls = w.HBox([
            panel("1 · Content", self.content_source, self.sample, self.corpus, self.upload, self.bars),
            panel("2 · Style", self.style_source, self.style, self.reference_upload),
            panel("3 · Sampling", self.temperature, self.top_p, self.seed, self.keep_harmony, self.generate_button),
        ], layout=w.Layout(flex_flow="row wrap"))
        rolls = w.HBox([w.Box([self.figures["content"]], layout=w.Layout(width="50%")),
                        w.Box([self.figures["result"]], layout=w.Layout(width="50%"))])
        super().__init__([w.HTML(CSS + "<h2 style='margin:4px 0'>Transfer Studio</h2>"), controls, self.status,
                          rolls, self.audio_box, self.score_box])
        self.add_class("mst-studio")

        self.upload.observe(self._on_upload, "value")
        self.reference_upload.observe(self._on_reference_upload, "value")
        self.corpus.observe(lambda _: setattr(self.content_source, "value", "corpus"), "value")
        self.sample.observe(lambda _: setattr(self.content_source, "value", "sample"), "value")
        self.style.observe(lambda _: setattr(self.style_source, "value", "named"), "value")
        self.generate_button.on_click(lambda _: self.generate())
        self.load(model, tokenizer)

    # -------------------------------------------------------------- model
    def load(self, model: str | os.PathLike | MusicStyleTransformer | None,
             tokenizer: RemiTokenizer | None = None) -> bool:
        """Load ``model`` (see the class doc); a failure leaves no model and says why. True if loaded."""
        self.model = None
        if model is None:
            show_message(self.status, "No model loaded: create the studio with model='demo' or a checkpoint "
                         "folder.", error=True)
            return False
        try:
            self.model, self.tokenizer = open_model(model, tokenizer)
        except ValueError as err:
            show_message(self.status, str(err), error=True)
            return False
        n = sum(p.numel() for p in self.model.parameters())
        show_message(self.status, f"Model {self.model_name!r} ready ({n / 1e6:.2f} M parameters). Pick a content "
                     "piece and a style, then press Generate.")
        return True

    # -------------------------------------------------------------- inputs
    def _on_upload(self, _change=None) -> None:
        if not self.upload.value:
            return
        item = self.upload.value[0]
        name = item.get("name", "upload")
        try:  # from the file's bytes: a performance's timing is still there to estimate beats from
            took = intake(bytes(item["content"]), name=name)
        except (MidiError, ValueError) as err:
            self.intake = None
            show_message(self.status, f"Could not read the upload: {err}", error=True)
            return
        self.intake = dataclasses.replace(took, piece=took.piece.replace(name=name.rsplit(".", 1)[0]))
        self.content_source.value = "upload"
        show_message(self.status, f"Content: {name} ({len(took.piece)} notes): {took.account}. Press Generate.")

    def _on_reference_upload(self, _change=None) -> None:
        if not self.reference_upload.value:
            return
        try:
            name, reference = reference_from_upload(self.reference_upload.value[0])
            if isinstance(reference, np.ndarray):
                reference = reference[: REFERENCE_SECONDS * audio.SAMPLE_RATE]  # (samples,)
        except (MidiError, ValueError) as err:
            self._reference_upload = None
            show_message(self.status, f"Could not read the reference: {err}", error=True)
            return
        self._reference_upload = (name, reference)
        self.style_source.value = "upload"
        self.heard = self._hear(reference)
        if self.heard is None:
            show_message(self.status, f"Reference: {name}. Press Generate.")
        elif self.heard.known:
            show_message(self.status, f"Reference: {name}. The style encoder hears {self.heard}. Press Generate.")
        else:
            show_message(self.status, f"Reference: {name}: {self.heard}. Upload music in one of the model's "
                         "styles, or pick a named style.", error=True)

    def _hear(self, reference: Piece | np.ndarray):
        """What the model's style encoder hears in ``reference`` (None without a recognizer or model)."""
        return self._ear.hear(self.model, reference, on_first_use=lambda: show_message(
            self.status, "Listening to the reference (the first time, the model's style map is built: about "
            "half a minute)..."))

    def _content(self) -> Piece:
        """The first ``bars`` bars of the selected content; ValueError with a message for the user."""
        source = self.content_source.value
        if source == "sample":
            if self.sample.value is None:
                raise ValueError("Pick a sample piece (or choose another content source).")
            piece = load_piece(sample_paths()[self.sample.value])
        elif source == "corpus":
            piece = self._corpus_piece(self.corpus.value.strip())
        elif source == "upload":
            if self.intake is None:
                raise ValueError("Upload a MIDI file first (or choose another content source).")
            piece = self.intake.piece
        else:
            raise ValueError("Choose a content source: a sample, a music21 corpus piece or an upload.")
        piece = piece.slice_bars(0, self.bars.value)
        if not len(piece):
            raise ValueError(f"{piece.name}: its first {self.bars.value} bars hold no notes; nothing to transfer.")
        return piece

    def _corpus_piece(self, name: str) -> Piece:
        if not name:
            raise ValueError("Type a music21 corpus piece, e.g. bach/bwv66.6.")
        if name not in self._corpus_cache:
            import music21

            try:
                score = music21.corpus.parse(name)
                self._corpus_cache[name] = load_piece(score, name=name)
            except (music21.exceptions21.Music21Exception, MidiError, ValueError, TypeError) as err:
                # a name that is not a single work (a whole collection) gives an Opus: TypeError
                raise ValueError(f"music21 corpus piece {name!r}: {err}") from err
        return self._corpus_cache[name]

    def _reference(self, content_name: str) -> tuple[Piece | np.ndarray, str, str | None]:
        """``(reference, description, style name or None)``; a named style's reference is the library's
        (:func:`mstoolkit.data.style_reference`: another sample piece rendered in that style)."""
        if self.style_source.value == "upload":
            if self._reference_upload is None:
                raise ValueError("Upload a reference (MIDI or audio) first, or choose a named style.")
            name, reference = self._reference_upload
            if self.heard is not None and not self.heard.known:
                raise ValueError(f"The reference {name} {self.heard}: upload music in one of the model's styles, "
                                 "or pick a named style.")
            return reference, f"uploaded {name}", None
        if self.style.value is None:
            raise ValueError("Pick a style.")
        reference = style_reference(self.style.value, avoid=content_name)
        return reference, f"{reference.name} in {self.style.value}", self.style.value

    # -------------------------------------------------------------- generate
    def generate(self) -> Piece | None:
        """Transfer the content into the chosen style; fills every view. Returns the result (or None
        after showing a message)."""
        from mstoolkit.generate import reference_mel, transfer

        if self.model is None:
            show_message(self.status, "No model loaded: create the studio with model='demo' or a checkpoint "
                         "folder.", error=True)
            return None
        try:
            content = self._content()
            reference, described, style = self._reference(content.name)
        except (MidiError, ValueError) as err:
            show_message(self.status, str(err), error=True)
            return None
        reference_wave = audio.render(reference) if isinstance(reference, Piece) else reference
        mel = reference_mel(reference_wave, n_mels=self.model.config.n_mels)  # (n_mels, frames), at training level
        show_message(self.status, f"Generating {content.name} ({self.bars.value} bars) in the style of "
                     f"{described}...")
        self.generate_button.disabled = True
        try:
            t0 = time.perf_counter()
            result = transfer(model=self.model, tokenizer=self.tokenizer, content=content, reference=mel,
                              temperature=self.temperature.value,
                              top_p=self.top_p.value if self.top_p.value < 1 else None, seed=self.seed.value,
                              harmony_window=1.0 if self.keep_harmony.value else None)
            seconds = time.perf_counter() - t0
        except Exception as err:  # noqa: BLE001 - any model/checkpoint failure becomes a message, not a traceback
            show_message(self.status, f"Generation failed: {type(err).__name__}: {err}", error=True)
            return None
        finally:
            self.generate_button.disabled = False
        if self.content_source.value == "upload" and self.intake is not None:  # the file's drums, as they were
            starts = self.intake.piece.bar_starts()  # bar lines of the whole upload
            until = starts[self.bars.value] if len(starts) > self.bars.value else None  # the bars transferred
            result = self.intake.with_drums(result, until=until)
        self.content, self.reference, self.result, self.seconds = content, reference, result, seconds
        self.target = render_style(content, style) if style is not None else None
        self._show_rolls(described)
        self._show_audio(reference_wave)
        self._score(style)
        empty = " The model wrote no notes: try another seed or a higher temperature." if not len(result) else ""
        show_message(self.status, f"{content.name}, {self.bars.value} bars, in the style of {described}: "
                     f"{len(result)} notes generated in {seconds:.1f} s (temperature {self.temperature.value:g}, "
                     f"top-p {self.top_p.value:g}, seed {self.seed.value}).{empty}")
        return result

    def _show_rolls(self, described: str) -> None:
        replace_figure(self.figures["content"], viz.piano_roll(self.content, title=f"content: {self.content.name}"))
        # "bwv66.6 in the style of bwv269 in swing": the content piece first, then where the style came from
        replace_figure(self.figures["result"], viz.piano_roll(
            self.result, title=f"result: {self.content.name} in the style of {described}"))

    def _show_audio(self, reference_wave: np.ndarray) -> None:
        self.audios = {"content": audio.play(self.content), "result": audio.play(self.result),
                       "reference": audio.play(reference_wave)}
        if self.target is not None:
            self.audios["target"] = audio.play(self.target)
        labels = {"content": "A · content", "result": "B · result", "target": "rule-rendered target",
                  "reference": "style reference"}
        cells = "".join(f"<td style='padding:0 12px 0 0'><b>{labels[k]}</b><br>{a._repr_html_()}</td>"
                        for k, a in self.audios.items())
        self.audio_box.value = f"<table><tr>{cells}</tr></table>"

    def _score(self, style: str | None) -> None:
        """Scores of the result and of the identity baseline (the content copied), by the library
        (:func:`mstoolkit.metrics.score_transfer`, :func:`mstoolkit.bench.sample_style_classifier`),
        drawn as a table."""
        content, result, target = self.content, self.result, self.target
        classifier = sample_style_classifier() if self.classify else None
        self.metrics, self.baseline_metrics = (
            metrics.score_transfer(piece, content, self.reference, style=style, target=target, classifier=classifier)
            for piece in (result, content))
        self.breakdown = metrics.error_breakdown(result, target) if target is not None else {}
        self.baseline_breakdown = metrics.error_breakdown(content, target) if target is not None else {}
        self.predicted_style = self.metrics.get("predicted_style")
        rows = []
        if self.predicted_style is not None:
            rows.append(("sounds like (style classifier)", self.metrics["predicted_style"],
                         self.baseline_metrics["predicted_style"], style or ""))
        for key, label, better in SCORE_ROWS:
            if self.metrics.get(key) is not None:
                base = self.baseline_metrics.get(key)
                rows.append((label, f"{self.metrics[key]:.3f}", "" if base is None else f"{base:.3f}", better))
        if self.breakdown:  # where the result's notes went wrong, as "12 of 40 (30%)"
            def cell(counts: dict[str, int], kind: str) -> str:
                whole, share = counts["n_target" if kind == "missed" else "n_output"], metrics.error_shares(counts)[kind]
                return f"{counts[kind]} of {whole}" + (f" ({share:.0%})" if whole else "")

            rows += [(label, cell(self.breakdown, kind), cell(self.baseline_breakdown, kind), better)
                     for kind, label, better in BREAKDOWN_ROWS]
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        note = ("the target is the content rendered by the style's rule (StyleBench's ground truth)" if style
                else "an uploaded reference has no ground truth: only content and profile measures")
        self.score_box.value = (f"<h3 style='margin:4px 0'>Scores</h3><table class='mst-scores'><tr><th>measure</th>"
                                f"<th>result</th><th>content copied</th><th>goal</th></tr>{body}</table>"
                                f"<small>{html.escape(note)}.</small>")
