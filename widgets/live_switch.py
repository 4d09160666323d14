"""``LiveSwitch``: music that keeps playing while you switch its style (the game-music demo).

    >>> from mstoolkit.widgets import LiveSwitch
    >>> LiveSwitch("demo", content="bwv66.6")       # press Play, then a style button or keys 1-9  # doctest: +SKIP

The kernel side is a :class:`mstoolkit.live.LiveSession` (generation + soundfont rendering, beat by
beat, ahead of playback, in a thread). Each rendered beat goes to the browser as 16-bit PCM in a
binary message; the front end (``live_switch.js``, an anywidget module shipped in this package, no
CDN) schedules the beats back to back on one Web Audio timeline, so playback is gapless, and draws
a piano roll that scrolls with the playhead, each beat coloured by its style. A switch is sent with
the player's own playhead, so it lands on the next beat (or bar) *the listener* hears.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from mstoolkit.live import Chunk, LiveSession
from mstoolkit.shipped import DEFAULT_MODEL

from ._common import StyleEar, reference_from_upload

_HERE = Path(__file__).parent


class LiveSwitch(anywidget.AnyWidget):
    """Play / pause / stop, one large button per style (keys 1-9), switch at the next beat or bar, a
    reference upload, a scrolling piano roll and the latency of each switch.

    ``model``, ``content`` and ``session_options`` as for :class:`~mstoolkit.live.LiveSession` (or
    pass a ready ``session``). ``session.switches`` holds every switch's latencies after a run.
    ``recognizer``: who checks an uploaded reference (``widgets._common.StyleEar``: ``"auto"``, a
    ``StyleRecognizer`` or None); one that matches no known style (speech, noise) is refused.
    """

    _esm = (_HERE / "live_switch.js").read_text(encoding="utf-8")
    _css = (_HERE / "live_switch.css").read_text(encoding="utf-8")

    styles = traitlets.List(traitlets.Unicode()).tag(sync=True)
    colors = traitlets.Dict().tag(sync=True)
    # Not ``style``: ipywidgets' DOMWidgetView reads a model's ``style`` as a reference to a Style
    # widget (it unpacks it and creates a child view of it), so a plain string there breaks the view
    # in the browser ("Cannot read properties of undefined (reading 'then')").
    current_style = traitlets.Unicode("straight").tag(sync=True)
    quantize = traitlets.Unicode("beat").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(self, model: Any = DEFAULT_MODEL, content: Any = "bwv66.6", *, session: LiveSession | None = None,
                 recognizer: Any = "auto", **session_options: Any) -> None:
        super().__init__()
        self._ear = StyleEar(recognizer)
        if session is None:
            session_options.setdefault("style", "straight")
            session = LiveSession(model, content, **session_options)
        self.session = session
        session.on_chunk, session.on_event = self._on_chunk, self._on_event
        self.styles, self.colors = list(session.styles), dict(session.colors)
        self.current_style, self.quantize = session.style, session.quantize
        self.status = (f"{Path(str(content)).stem if not isinstance(content, str) else content} · "
                       f"{session.tempo:.0f} bpm · {len(session.styles)} styles")
        self.on_msg(self._on_msg)

    # ---------------------------------------------------------------- browser -> kernel
    def _on_msg(self, _widget: Any, content: dict[str, Any], buffers: list) -> None:
        kind, live = content.get("type"), self.session
        if kind == "play":
            live.stop()
            live.quantize = content.get("quantize", self.quantize)
            live.style = self.current_style if self.current_style in live.references else live.style
            live.start()
        elif kind == "pause":
            live.pause()
        elif kind == "resume":
            live.resume()
            if content.get("playhead") is not None:
                live.sync(float(content["playhead"]))
        elif kind == "stop":
            live.stop()
            self._set_status()
        elif kind == "sync":
            live.sync(float(content["playhead"]))
        elif kind == "switch" and live.running:
            live.switch(content["style"], at=content.get("playhead"))
        elif kind == "upload" and buffers:
            self.upload(content.get("name", "upload"), bytes(buffers[0]))

    def upload(self, name: str, data: bytes) -> str | None:
        """Add an uploaded reference (MIDI or audio bytes) as a style, and switch to it if playing."""
        try:
            name, reference = reference_from_upload({"name": name, "content": data})
            heard = self._ear.hear(self.session.model, reference, on_first_use=lambda: setattr(
                self, "status", "Listening to the reference (the first time: about half a minute)..."))
            if heard is not None and not heard.known:
                self.status = f"{name} {heard}: upload music in one of the model's styles"
                return None
            style = self.session.add_reference(Path(name).stem, reference)
        except Exception as err:  # noqa: BLE001 - shown to the user
            self.status = f"Could not read {name}: {err}"
            return None
        if heard is not None:
            self.status = f"{Path(name).stem}: the style encoder hears {heard}"
        self.styles, self.colors = list(self.session.styles), dict(self.session.colors)
        if self.session.running:
            self.session.switch(style)
        else:
            self.current_style = style
        return style

    # ---------------------------------------------------------------- kernel -> browser
    def _on_chunk(self, chunk: Chunk) -> None:
        pcm = (np.clip(chunk.audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self.send({"type": "chunk", "index": chunk.index, "start": chunk.start, "duration": chunk.duration,
                   "style": chunk.style, "take": chunk.take, "sample_rate": chunk.sample_rate,
                   "notes": [[round(t, 4), round(d, 4), p] for t, d, p in chunk.notes],
                   "playhead": self.session.playhead()}, buffers=[pcm])

    def _on_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "cut":
            self.send(event)
            self.current_style = event["style"]
        elif event["type"] == "switch":
            self.send(event)
            self._set_status()
        elif event["type"] in ("error", "end"):
            self.status = event.get("message", "the piece ended")
            self.send({"type": "stopped"})

    def _set_status(self) -> None:
        s = self.session.summary()
        parts = [f"{s['switches']} switches"]
        if "audio_ready_ms" in s:
            r = s["audio_ready_ms"]
            parts.append(f"new style ready: median {r['median']:.0f} ms, worst {r['worst']:.0f} ms after the click")
        if s.get("realtime_factor"):
            parts.append(f"generation + rendering {s['realtime_factor']}x faster than real time")
        self.status = " · ".join(parts)

    def close(self) -> None:
        self.session.stop()
        super().close()
