"""LiveSwitch without a browser: the messages a front end would send drive the session, and the
kernel sends chunks (16-bit PCM buffers), cuts and switch records back."""
import re
import time

import numpy as np
import pytest

pytest.importorskip("anywidget")

from mstoolkit.checkpoint import load_with_tokenizer  # noqa: E402
from mstoolkit.shipped import shipped_path  # noqa: E402
from mstoolkit.widgets import LiveSwitch  # noqa: E402


@pytest.fixture(scope="module")
def widget(tmp_path_factory):
    from mstoolkit.recognize import StyleRecognizer

    model, tokenizer, _ = load_with_tokenizer("demo")
    recognizer = StyleRecognizer.from_model(model, windows=3, held_out=2, cache_dir=tmp_path_factory.mktemp("ear"),
                                            progress=False)
    w = LiveSwitch(model, "bwv66.6", tokenizer=tokenizer, styles=["straight", "swing", "waltz"], bars=4, seed=0,
                   recognizer=recognizer)
    sent = []
    w.send = lambda content, buffers=None: sent.append((content, buffers))
    w.sent = sent
    yield w
    w.close()


def test_esm_is_inline_and_offline(widget):
    assert "export default" in widget._esm and "http" not in widget._esm
    assert widget.styles == ["straight", "swing", "waltz"] and set(widget.colors) >= set(widget.styles)


def test_no_trait_named_like_a_dom_widget_reference(widget):
    """ipywidgets' DOMWidgetView takes a model's ``layout`` and ``style`` for references to a Layout
    and a Style widget and creates child views of them: a plain string there made the browser log
    "Cannot read properties of undefined (reading 'then')" (create_view on a string)."""
    assert "style" not in widget.keys and "current_style" in widget.keys
    assert not re.search(r'model\.(get|set)\("style"|"change:style"', widget._esm)


def test_play_switch_stop_by_messages(widget):
    widget._on_msg(widget, {"type": "play", "quantize": "beat"}, [])
    widget.session.wait_until(0.8)
    widget._on_msg(widget, {"type": "switch", "style": "swing", "playhead": widget.session.playhead()}, [])
    deadline = time.perf_counter() + 30
    while not any(c.get("type") == "switch" for c, _ in widget.sent):
        assert time.perf_counter() < deadline
        time.sleep(0.02)
    widget.session.wait_until(3.0)  # bwv66.6 starts with a pickup: its first notes sound at beat 4
    widget._on_msg(widget, {"type": "stop"}, [])
    assert not widget.session.running
    chunks = [(c, b) for c, b in widget.sent if c["type"] == "chunk"]
    assert chunks and all(len(b) == 1 for _, b in chunks)
    pcm = np.frombuffer(b"".join(bytes(b[0]) for _, b in chunks), dtype="<i2")
    assert pcm.size > 0 and np.abs(pcm).max() > 100  # audible
    cut = next(c for c, _ in widget.sent if c["type"] == "cut")
    record = next(c for c, _ in widget.sent if c["type"] == "switch")
    assert cut["style"] == record["style"] == "swing" == widget.current_style
    assert any(c["style"] == "swing" and c["start"] >= cut["at"] - 1e-3 for c, _ in chunks)
    assert "switches" in widget.status


def test_upload_adds_a_style(widget):
    from mstoolkit.data import style_reference

    name = widget.upload("groove.mid", style_reference("bossa").to_midi_bytes())
    assert name == "groove" and "groove" in widget.styles and widget.current_style == "groove"
    assert "hears bossa" in widget.status  # what the style encoder heard in it
    assert widget.upload("broken.mid", b"not midi") is None and "Could not read" in widget.status
    speech = shipped_path("audio", "speech_gettysburg.ogg").read_bytes()
    assert widget.upload("speech.ogg", speech) is None and "matches no known style" in widget.status
    assert "speech" not in widget.styles
