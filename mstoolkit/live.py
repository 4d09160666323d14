"""Live style switching: music that keeps playing while its style changes (the game-music case).

A :class:`LiveSession` transfers a piece (or a short theme, looped) beat by beat ahead of playback in
a background thread and renders every finished beat to audio with the soundfont. ``switch(style)``
takes effect at the next beat (or bar, ``quantize="bar"``) of the *playback* clock:

    >>> live = LiveSession("demo", content="bwv66.6", style="straight", on_chunk=send_to_speaker)  # doctest: +SKIP
    >>> live.start()  # doctest: +SKIP
    >>> live.switch("swing")            # the game got exciting  # doctest: +SKIP
    >>> live.switches[-1]               # ms after the click  # doctest: +SKIP
    {'style': 'swing', 'encode_ms': 9.8, 'first_token_ms': 11.2, 'audio_ready_ms': 58.0, 'audible_ms': 412.0, ...}
    >>> live.stop()  # doctest: +SKIP

Why a switch is cheap: generation is autoregressive with a KV cache (:class:`~mstoolkit.generate.Decoder`).
The tokens already decoded stay; a switch only re-encodes the content with the new style reference
and refills the cross-attention cache (``Decoder.set_style``), then decodes on. Because generation
runs ahead of playback (``lookahead`` seconds), the beats already generated after the switch point
are thrown away: the decoder goes back to its state at that beat (``Decoder.snapshot`` /
``Decoder.restore``, taken at every beat) and continues in the new style. What bounds the latency:
the encoder + the first new token, then the tokens and the soundfont rendering of one beat (the
first audio), then the wait for the beat itself (at most one beat, plus ``margin``).

Time on the session's timeline is in seconds from the start of playback (``playhead()``), at one
tempo (the content's first tempo, or ``tempo=``). A :class:`Chunk` is one beat of audio: the notes
that *start* in that beat, rendered with their full length and release, so consecutive chunks
overlap and are summed by the player. After a switch at time ``s`` the session sends a ``cut`` event
(the player drops what it scheduled from ``s`` on) and new chunks from ``s`` with a higher ``take``.

The model is used only through the Decoder (``decode_step``), so any model with that interface works.
No ipywidgets here: the player is ``mstoolkit.widgets.LiveSwitch`` (or any ``on_chunk`` callback).
"""
from __future__ import annotations

import collections
import dataclasses
import statistics
import threading
import time
from typing import Any, Callable

import numpy as np
import torch

from mstoolkit.data import style_reference
from mstoolkit.generate import Decoder, prepare_content, reference_mel, token_budget
from mstoolkit.intake import intake
from mstoolkit.piece import TICKS_PER_QUARTER, Note, Piece, TempoChange, load_piece, sample_paths
from mstoolkit.shipped import DEFAULT_MODEL
from mstoolkit.tokenizer import bar_ticks
from mstoolkit.unique_notes import UniqueNotes

SAMPLE_RATE = 48_000  # the soundfont synthesizer's own rate: no resampling on the hot path
BEAT = TICKS_PER_QUARTER  # a beat is a quarter note (12 ticks)
RELEASE_SECONDS = 0.6  # how long a chunk's audio runs past its last note (release + reverb)

# Colours of the styles on the piano roll and the buttons (readable on a projector).
STYLE_COLORS = {
    "straight": "#4e79a7", "swing": "#f28e2b", "shuffle": "#e15759", "staccato": "#76b7b2",
    "waltz": "#59a14f", "alberti": "#edc948", "arpeggio": "#b07aa1", "stride": "#ff9da7", "bossa": "#9c755f",
}
EXTRA_COLORS = ("#17becf", "#bcbd22", "#7f7f7f", "#8c564b")


@dataclasses.dataclass
class Chunk:
    """One beat of the live stream: ``audio`` (float32 mono at ``sample_rate``) plays from ``start``
    (seconds on the session's timeline) and may run past ``start + duration`` (note tails). ``notes``:
    ``(start s, duration s, pitch)`` for a piano roll. A chunk of a higher ``take`` replaces what an
    earlier take scheduled from its ``start`` on. ``ready``: the playhead when it was handed over."""

    index: int
    start: float
    duration: float
    audio: np.ndarray
    sample_rate: int
    notes: list[tuple[float, float, int]]
    style: str
    take: int
    ready: float = 0.0

    @property
    def ahead(self) -> float:
        """Seconds between being ready and being due: > 0 means playback never waited for it."""
        return self.start - self.ready


class _Reader:
    """Walks REMI tokens one at a time: the musical time (ticks from the window's start) and the notes."""

    def __init__(self, kinds: list[str], values: list[Any], bar_len: int) -> None:
        self.kinds, self.values = kinds, values
        self.bar_start = self.position = 0
        self.bar_len = bar_len
        self.seen_bar = False
        self.time = 0
        self.notes: list[Note] = []
        self._note: list[Any] = []
        self.ended = False

    def feed(self, token: int) -> int:
        kind, value = self.kinds[token], self.values[token]
        if kind == "Bar":
            self.bar_start, self.seen_bar, self.position = (self.bar_start + self.bar_len if self.seen_bar else 0), True, 0
            self.time = self.bar_start
        elif kind == "TimeSig":
            self.bar_len = value
        elif kind == "Position":
            self.position = value
            self.time = self.bar_start + value
        elif kind == "Program":
            self._note = [value]
        elif kind in ("Pitch", "Velocity") and self._note:
            self._note.append(value)
        elif kind == "Duration" and len(self._note) == 3:
            program, pitch, velocity = self._note
            drum = program == "drums"
            self.notes.append(Note(self.bar_start + self.position, value, pitch, velocity,
                                   0 if drum else program, drum))
            self._note = []
        elif kind == "EOS":
            self.ended = True
            self.time = self.end
        return self.time

    @property
    def end(self) -> int:
        """Where the generated music ends: the end of its last bar."""
        return self.bar_start + self.bar_len if self.seen_bar else 0


def _token_table(tokenizer: Any) -> tuple[list[str], list[Any]]:
    kinds, values = [], []
    for name in tokenizer.tokens(range(tokenizer.vocab_size)):
        kind, _, value = name.partition("_")
        if kind == "TimeSig":
            n, d = value.split("/")
            value = int(bar_ticks(int(n), int(d)))
        elif kind == "Program":
            value = "drums" if value == "drums" else int(value)
        elif kind in ("Position", "Pitch", "Velocity", "Duration"):
            value = int(value)
        kinds.append(kind)
        values.append(value)
    return kinds, values


class _Window:
    """One content window being generated: its Decoder, tokens, reader and per-beat snapshots."""

    def __init__(self, number: int, content_index: int, start: int, decoder: Decoder, reader: _Reader,
                 style: str) -> None:
        self.number, self.content_index, self.start = number, content_index, start  # start: global tick
        self.decoder, self.reader, self.style = decoder, reader, style
        self.ids = [decoder.bos_id]
        self.chunk_from = start  # global tick of the next chunk to emit
        self.snapshots: dict[int, tuple] = {}  # global boundary tick -> (decoder snapshot, len(ids), is bar line)
        self.done = False
        self.end = start  # global tick where it ends, once done

    @property
    def time(self) -> int:
        return self.start + self.reader.time


def load_content(content: Any) -> Piece:
    """A Piece from a Piece, a path / MIDI bytes, or a shipped sample's name (``"bwv66.6"``)."""
    if isinstance(content, str) and content in sample_paths():
        return load_piece(sample_paths()[content])
    return load_piece(content)


class LiveSession:
    """Live, switchable style transfer of ``content`` (see the module docstring).

    ``model``: a model, a shipped name or a checkpoint folder (``checkpoint.load_with_tokenizer``).
    ``content``: a Piece, MIDI path or sample name, read by :func:`~mstoolkit.intake.intake` as
    :func:`~mstoolkit.generate.transfer` reads it (``self.intake.account`` says what it did; drum tracks
    are left out of the live stream); ``bars``: keep only its first bars (a theme);
    ``loop``: start again at the end (default True). ``content_style``: rendered first, as
    :func:`~mstoolkit.generate.transfer` does. ``style``: the first style (a name or a reference).
    ``styles``: the named styles offered (default: every StyleBench style); their references are
    prepared up front so a switch never waits for a soundfont rendering.
    ``quantize``: ``"beat"`` or ``"bar"``, where a switch lands; ``margin``: seconds kept between the
    click and the switch point (what the new audio needs to get ready and reach the player).
    ``lookahead``: seconds generated ahead of the playhead. ``clock``: a callable giving the playback
    position in seconds (default: the session's own wall clock, started by :meth:`start`; a player
    may correct it with :meth:`sync`). ``on_chunk(chunk)`` / ``on_event(dict)``: called from the
    generation thread. ``gain``: scales the raw soundfont output (chunks are not normalized one by one,
    which would change the loudness from beat to beat).
    """

    def __init__(self, model: Any = DEFAULT_MODEL, content: Any = "bwv66.6", *, tokenizer: Any = None,
                 style: Any = "straight", styles: list[str] | None = None, quantize: str = "beat",
                 lookahead: float = 1.5, margin: float = 0.15, preroll: float = 0.4, window_bars: int = 4,
                 bars: int | None = None, loop: bool = True, content_style: str | None = "straight",
                 tempo: float | None = None, temperature: float = 0.9, top_p: float | None = 0.95,
                 seed: int | None = None, sample_rate: int = SAMPLE_RATE, gain: float = 4.0,
                 on_chunk: Callable[[Chunk], None] | None = None,
                 on_event: Callable[[dict], None] | None = None,
                 clock: Callable[[], float] | None = None, device: str | torch.device = "cpu") -> None:
        from mstoolkit.checkpoint import load_with_tokenizer
        from mstoolkit.styles import list_styles

        if quantize not in ("beat", "bar"):
            raise ValueError(f"quantize: 'beat' or 'bar', got {quantize!r}")
        if lookahead <= 0 or margin < 0 or window_bars < 1:
            raise ValueError("LiveSession: need lookahead > 0, margin >= 0 and window_bars >= 1")
        self.model, self.tokenizer, _ = load_with_tokenizer(model, tokenizer, device=device)
        self._unique_notes = UniqueNotes(self.tokenizer)  # as transfer() decodes: no pitch twice at one onset
        self.quantize, self.lookahead, self.margin, self.preroll = quantize, lookahead, margin, preroll
        self.loop, self.sample_rate, self.gain = loop, sample_rate, gain
        self.temperature, self.top_p, self.seed = temperature, top_p, seed
        self.on_chunk, self.on_event = on_chunk, on_event
        self._external_clock = clock

        # read as transfer() reads it: intake (bar lines, estimated beats; drum tracks set aside, and not
        # played here: the model never heard drums), then rendered in content_style
        self.intake = intake(load_content(content))
        piece = prepare_content(self.tokenizer, self.intake, content_style)
        n_bars = len(piece.bar_starts())
        n_bars = n_bars if bars is None else max(1, min(bars, n_bars))
        self.content = piece.slice_bars(0, n_bars)
        self.tempo = float(tempo or piece.tempos[0].bpm)
        self.seconds_per_tick = 60.0 / self.tempo / TICKS_PER_QUARTER
        firsts = range(0, n_bars, window_bars)
        self._windows_ids = [self.tokenizer.encode(piece.slice_bars(f, min(window_bars, n_bars - f))) for f in firsts]
        self._windows_len = [sum(piece.time_signature_at(b).bar_ticks for b in piece.bar_starts()[f:f + window_bars])
                             for f in firsts]
        self._first_bar_len = piece.time_signatures[0].bar_ticks
        self._kinds, self._values = _token_table(self.tokenizer)
        self.window_bars = window_bars

        # Style references (log-mels), prepared now so that a switch costs no rendering.
        self.styles = list(styles or list_styles())
        self.references: dict[str, np.ndarray] = {}
        for name in self.styles:
            self.references[name] = reference_mel(style_reference(name, avoid=piece), n_mels=self.model.config.n_mels)
        self.style = self._add_style(style)
        self.colors = {name: self.color(name) for name in self.references}

        self.switches: list[dict[str, Any]] = []  # one record per switch (latencies in ms)
        self.recent: collections.deque[Chunk] = collections.deque(maxlen=32)  # the last chunks, for inspection
        self.stats = {"chunks": 0, "audio_s": 0.0, "busy_s": 0.0, "tokens": 0, "late": 0, "min_ahead": None}
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._request: dict[str, Any] | None = None  # a switch asked for, not yet handled by the thread
        self._pending: dict[str, Any] | None = None  # a switch waiting for generation to reach its point
        self._measuring: list[dict[str, Any]] = []  # switches whose latencies are still being measured
        self._origin: float | None = None
        self._paused_at: float | None = None
        self._reset_stream()

    # ------------------------------------------------------------------ styles
    def color(self, style: str) -> str:
        if style in STYLE_COLORS:
            return STYLE_COLORS[style]
        extras = [s for s in self.references if s not in STYLE_COLORS]
        return EXTRA_COLORS[extras.index(style) % len(EXTRA_COLORS)] if style in extras else "#444444"

    def add_reference(self, name: str, reference: Any) -> str:
        """Offer a reference of your own (a Piece, MIDI/audio path, mono audio or a log-mel) as style ``name``."""
        self.references[name] = reference_mel(reference, n_mels=self.model.config.n_mels)
        if name not in self.styles:
            self.styles.append(name)
        self.colors[name] = self.color(name)
        return name

    def _add_style(self, style: Any) -> str:
        if isinstance(style, str) and style in self.references:
            return style
        if isinstance(style, str) and style in STYLE_COLORS:
            return self.add_reference(style, style_reference(style, avoid=self.content))
        return self.add_reference(f"reference {len(self.references) + 1}", style)

    # ------------------------------------------------------------------ the clock
    def playhead(self) -> float:
        """Playback position in seconds (negative during the preroll; frozen while paused)."""
        if self._external_clock is not None:
            return float(self._external_clock())
        if self._origin is None:
            return 0.0
        now = self._paused_at if self._paused_at is not None else time.perf_counter()
        return now - self._origin

    def sync(self, playhead: float) -> None:
        """Set the clock to the player's position (the player's clock is the one the listener hears)."""
        if self._origin is not None and self._paused_at is None:
            self._origin = time.perf_counter() - playhead

    # ------------------------------------------------------------------ control
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def start(self) -> "LiveSession":
        """Start generating (and the clock, after ``preroll`` seconds). After :meth:`stop` it starts over."""
        if self.running:
            return self
        self._reset_stream()
        self._stop.clear()
        self._origin, self._paused_at = time.perf_counter() + self.preroll, None
        self._thread = threading.Thread(target=self._run, name="mstoolkit-live", daemon=True)
        self._thread.start()
        return self

    def pause(self) -> None:
        if self._paused_at is None and self._origin is not None:
            self._paused_at = time.perf_counter()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._origin += time.perf_counter() - self._paused_at
            self._paused_at = None
            self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and join the generation thread; the decoders and their caches are released."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("LiveSession.stop: the generation thread did not stop")
        self._thread = None
        self._windows = []
        self._origin = None

    def switch(self, style: Any, at: float | None = None) -> dict[str, Any]:
        """Switch to ``style`` (a name in ``styles`` or a reference) at the next beat/bar after the
        playhead ``at`` (default: now) + ``margin``. Returns the switch's record, filled in as it happens."""
        t0 = time.perf_counter()
        name = self._add_style(style)
        at = self.playhead() if at is None else float(at)
        record = {"style": name, "clicked_at": round(at, 4), "t0": t0}
        with self._lock:
            self._request = record
        self._wake.set()
        return record

    def wait_until(self, seconds: float, timeout: float = 60.0) -> bool:
        """Block until the playhead reaches ``seconds`` (for scripts and tests)."""
        deadline = time.perf_counter() + timeout
        while self.playhead() < seconds and time.perf_counter() < deadline:
            if self.error is not None:
                raise self.error
            time.sleep(0.005)
        return self.playhead() >= seconds

    def summary(self) -> dict[str, Any]:
        """Median and worst switch latencies (ms) and the real-time factor of generation + rendering."""
        done = [s for s in self.switches if "audio_ready_ms" in s]
        out: dict[str, Any] = {"switches": len(done)}
        for key in ("encode_ms", "first_token_ms", "audio_ready_ms", "audible_ms"):
            values = [s[key] for s in done if key in s]
            if values:
                out[key] = {"median": round(statistics.median(values), 1), "worst": round(max(values), 1)}
        busy = self.stats["busy_s"]
        out["realtime_factor"] = round(self.stats["audio_s"] / busy, 1) if busy else None
        out["late_chunks"] = self.stats["late"]
        out["min_ahead_s"] = self.stats["min_ahead"]
        return out

    # ------------------------------------------------------------------ the generation thread
    def _reset_stream(self) -> None:
        self._windows: list[_Window] = []
        self._next_window = 0  # how many windows were started
        self._take = 0
        self._request = self._pending = None
        self._measuring = []
        self._generator = None if self.seed is None else torch.Generator().manual_seed(self.seed)

    def _ticks(self, seconds: float) -> int:
        return int(np.ceil(seconds / self.seconds_per_tick - 1e-6))

    def _seconds(self, ticks: int) -> float:
        return ticks * self.seconds_per_tick

    def _run(self) -> None:
        try:
            with torch.inference_mode():
                while not self._stop.is_set():
                    with self._lock:
                        request, self._request = self._request, None
                    if request is not None:
                        self._handle(request)
                    window = self._windows[-1] if self._windows else None
                    generated = self._seconds(window.chunk_from) if window is not None else -1.0
                    if self.paused or generated - self.playhead() > self.lookahead:
                        self._wake.wait(0.005)
                        self._wake.clear()
                        continue
                    if window is None or window.done:
                        if not self._open_window():
                            self._emit({"type": "end", "at": generated})
                            self._stop.wait()
                            break
                    else:
                        self._advance(window)
                    self._forget_played()
        except BaseException as err:  # noqa: BLE001 - reported to the player, re-raised by wait_until
            self.error = err
            self._emit({"type": "error", "message": f"{type(err).__name__}: {err}"})
        finally:
            self._windows = []

    def _open_window(self) -> bool:
        n = len(self._windows_ids)
        number = self._next_window
        if number >= n and not self.loop:
            return False
        start = self._windows[-1].end if self._windows else 0
        t0 = time.perf_counter()
        style = self._windows[-1].style if self._windows else self.style
        pending = self._pending
        if pending is not None and start >= pending["at_tick"]:  # a pending switch lands on this bar line
            style = pending["style"]
        ids = self._windows_ids[number % n]
        decoder = Decoder(self.model, ids, self.references[style], max_new_tokens=token_budget(
            len(ids), self.model.config.max_len), temperature=self.temperature, top_p=self.top_p,
            grammar=self.tokenizer.grammar, bar_ids=self.tokenizer.bar_ids, max_bars=self.window_bars,
            cuda_graph=False, generator=self._generator, bos_id=self.tokenizer.bos_id, eos_id=self.tokenizer.eos_id,
            unique_notes=self._unique_notes)
        window = _Window(number, number % n, start, decoder, _Reader(self._kinds, self._values, self._first_bar_len),
                         style)
        window.snapshots[start] = (decoder.snapshot(), 1, True)
        self._windows.append(window)
        self._next_window += 1
        self.stats["busy_s"] += time.perf_counter() - t0
        if pending is not None and style == pending["style"] and start >= pending["at_tick"]:
            self._landed(pending, start, window)
        self._emit({"type": "window", "number": number, "at": self._seconds(start), "style": style})
        return True

    def _advance(self, window: _Window) -> None:
        """One token of ``window``; on crossing beats: chunks, snapshots, a pending switch."""
        t0 = time.perf_counter()
        decoder = window.decoder
        if decoder.n >= decoder.max_new_tokens:
            token = decoder.eos_id
        else:
            decoder.step()
            token = int(decoder.token[0])
        window.ids.append(token)
        self.stats["tokens"] += 1
        for record in self._measuring:
            if "first_token_ms" not in record and record.get("landed"):
                record["first_token_ms"] = round((time.perf_counter() - record["t0"]) * 1e3, 2)
        time_ = window.start + window.reader.feed(token)
        ended = window.reader.ended or token == decoder.eos_id
        if ended:
            window.done = True
            # the end of its last bar (nothing generated: the content window's length)
            end = window.start + (window.reader.end or self._windows_len[window.content_index])
            time_ = window.end = max(end, window.chunk_from)
        self.stats["busy_s"] += time.perf_counter() - t0
        while True:  # every beat boundary crossed by this token
            boundary = self._next_boundary(window)
            if boundary > time_ or (boundary == time_ and not ended and self._kinds[token] not in ("Bar", "Position")):
                break
            self._emit_chunk(window, window.chunk_from, boundary)
            window.chunk_from = boundary
            if ended and boundary >= time_:
                break
            is_bar = self._kinds[token] == "Bar" and boundary == time_
            window.snapshots[boundary] = (decoder.snapshot(), len(window.ids), is_bar)
            pending = self._pending
            if pending is not None and boundary >= pending["at_tick"] and (self.quantize == "beat" or is_bar):
                decoder.set_style(self.references[pending["style"]])
                window.style = pending["style"]
                self._landed(pending, boundary, window)

    def _next_boundary(self, window: _Window) -> int:
        """The next chunk boundary after ``window.chunk_from``: the next beat, or the bar line if sooner."""
        rel = window.chunk_from - window.start
        beat = (rel // BEAT + 1) * BEAT
        reader = window.reader
        bar_end = reader.bar_start + reader.bar_len if reader.seen_bar else beat
        if rel < bar_end < beat:
            beat = bar_end
        return window.start + beat

    def _handle(self, record: dict[str, Any]) -> None:
        """A switch request: rewind to the switch point if it is already generated, else wait for it."""
        threshold = self._ticks(record["clicked_at"] + self.margin)
        if self._pending is not None and self._pending in self._measuring:  # superseded before it landed
            self._measuring.remove(self._pending)
            self._pending["superseded"] = True
        self._pending = None
        for window in self._windows:  # oldest first: the earliest boundary at or after the threshold
            points = sorted(b for b, (_, _, is_bar) in window.snapshots.items()
                            if b >= threshold and (self.quantize == "beat" or is_bar))
            if points:
                self._rewind(window, points[0], record)
                return
        record["at_tick"] = threshold
        self._pending = record
        self._measuring.append(record)

    def _rewind(self, window: _Window, boundary: int, record: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        snapshot, n_ids, _ = window.snapshots[boundary]
        self._windows = self._windows[: self._windows.index(window) + 1]
        self._next_window = window.number + 1
        window.decoder.restore(snapshot)
        window.ids = window.ids[:n_ids]
        window.reader = _Reader(self._kinds, self._values, self._first_bar_len)
        for token in window.ids[1:]:
            window.reader.feed(token)
        window.done = False
        window.chunk_from = boundary
        window.snapshots = {b: s for b, s in window.snapshots.items() if b <= boundary}
        window.decoder.set_style(self.references[record["style"]])
        window.style = record["style"]
        self.stats["busy_s"] += time.perf_counter() - t0
        self._measuring.append(record)
        self._landed(record, boundary, window)

    def _landed(self, record: dict[str, Any], boundary: int, window: _Window) -> None:
        """The switch takes effect at ``boundary``: tell the player to drop what it had from there on."""
        self._take += 1
        self._pending = None if self._pending is record else self._pending
        record.update(landed=True, take=self._take, at=round(self._seconds(boundary), 4),
                      encode_ms=round((time.perf_counter() - record["t0"]) * 1e3, 2))
        record["audible_ms"] = round((record["at"] - record["clicked_at"]) * 1e3, 1)
        self.style = record["style"]
        self._emit({"type": "cut", "at": record["at"], "take": self._take, "style": record["style"]})

    def _emit_chunk(self, window: _Window, start: int, end: int) -> None:
        t0 = time.perf_counter()
        notes = [n for n in window.reader.notes if start <= window.start + n.start < end]
        audio = self._render(notes, window.start - start)
        spt = self.seconds_per_tick
        chunk = Chunk(index=start // BEAT, start=self._seconds(start), duration=self._seconds(end - start),
                      audio=audio, sample_rate=self.sample_rate,
                      notes=[((window.start + n.start) * spt, n.duration * spt, n.pitch) for n in notes],
                      style=window.style, take=self._take)
        self.stats["busy_s"] += time.perf_counter() - t0
        self.stats["audio_s"] += chunk.duration
        self.stats["chunks"] += 1
        chunk.ready = self.playhead()
        ahead = round(chunk.ahead, 4)
        self.stats["min_ahead"] = ahead if self.stats["min_ahead"] is None else min(self.stats["min_ahead"], ahead)
        self.stats["late"] += ahead < 0
        for record in list(self._measuring):
            if record.get("landed") and chunk.take >= record["take"]:
                record["audio_ready_ms"] = round((time.perf_counter() - record["t0"]) * 1e3, 2)
                record.setdefault("first_token_ms", record["audio_ready_ms"])
                record["late"] = chunk.ahead < 0
                self._measuring.remove(record)
                self.switches.append({k: v for k, v in record.items() if k not in ("t0", "landed", "at_tick")})
                del self.switches[:-500]
                self._emit({"type": "switch", **self.switches[-1]})
        self.recent.append(chunk)
        if self.on_chunk is not None:
            self.on_chunk(chunk)

    def _render(self, notes: list[Note], shift: int) -> np.ndarray:
        """The soundfont audio of ``notes`` (moved by ``shift`` ticks), not normalized, trailing silence cut."""
        from mstoolkit import audio

        if not notes:
            return np.zeros(0, dtype=np.float32)
        notes = [dataclasses.replace(n, start=n.start + shift) for n in notes]
        piece = Piece(notes, [TempoChange(0, self.tempo)])
        wave = audio._synthesize(piece.to_pretty_midi(), self.sample_rate, audio.default_soundfont(), "auto")
        length = int((piece.duration_seconds + RELEASE_SECONDS) * self.sample_rate)
        wave = wave[:length] * self.gain
        loud = np.flatnonzero(np.abs(wave) > 1e-4)
        return np.ascontiguousarray(wave[: loud[-1] + 1] if len(loud) else wave[:0], dtype=np.float32)

    def _forget_played(self) -> None:
        """Drop windows and snapshots the playhead has passed (a switch can no longer go back there)."""
        now = self._ticks(self.playhead())
        while len(self._windows) > 1 and self._windows[1].start <= now - BEAT:
            self._windows.pop(0)
        for window in self._windows:
            for boundary in [b for b in window.snapshots if b < now]:
                del window.snapshots[boundary]

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def __enter__(self) -> "LiveSession":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
