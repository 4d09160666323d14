"""mstoolkit.live: a switch lands at the next beat / bar, generation keeps ahead of playback, stop
releases the thread; Decoder.snapshot / restore (what a switch rewinds with)."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from mstoolkit.checkpoint import load_with_tokenizer
from mstoolkit.generate import Decoder
from mstoolkit.live import BEAT, LiveSession


class FakeClock:
    """A playback clock the test moves by hand."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def demo():
    model, tokenizer, _ = load_with_tokenizer("demo")
    return model, tokenizer


def session(demo, **kw) -> LiveSession:
    model, tokenizer = demo
    kw.setdefault("styles", ["straight", "swing"])
    return LiveSession(model, "bwv66.6", tokenizer=tokenizer, style="straight", seed=0, bars=4, **kw)


def wait_for(condition, timeout=60.0):
    deadline = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < deadline, "timed out"
        time.sleep(0.01)


def test_decoder_snapshot_restore_replays_the_same_tokens(demo):
    model, tokenizer = demo
    ids = tokenizer.encode(tokenizer.quantize(__import__("mstoolkit").load_piece(
        __import__("mstoolkit.piece", fromlist=["x"]).sample_paths()["bwv66.6"])).slice_bars(0, 2))
    mel = torch.randn(model.config.n_mels, 64)
    dec = Decoder(model, ids, mel, max_new_tokens=64, temperature=0, grammar=tokenizer.grammar)
    for _ in range(5):
        dec.step()
    snap = dec.snapshot()
    for _ in range(10):
        dec.step()
    first = dec.out[0, : dec.n + 1].tolist()
    dec.restore(snap)
    assert dec.n == 5
    for _ in range(10):
        dec.step()
    assert dec.out[0, : dec.n + 1].tolist() == first


@pytest.mark.parametrize("quantize", ["beat", "bar"])
def test_switch_lands_at_the_next_beat_or_bar(demo, quantize):
    clock = FakeClock(0.5)
    chunks, events = [], []
    live = session(demo, quantize=quantize, clock=clock, lookahead=2.5, on_chunk=chunks.append,
                   on_event=events.append)
    spb = live.seconds_per_tick * BEAT  # seconds per beat
    with live:
        wait_for(lambda: chunks and chunks[-1].start + chunks[-1].duration >= clock.t + 2.4)  # generated ahead
        record = live.switch("swing")
        wait_for(lambda: "audio_ready_ms" in record)
    unit = spb if quantize == "beat" else 4 * spb  # bwv66.6 is in 4/4
    threshold = 0.5 + live.margin
    assert threshold - 1e-3 <= record["at"] < threshold + unit + 1e-3
    assert record["at"] / unit == pytest.approx(round(record["at"] / unit), abs=1e-3)
    assert any(e["type"] == "cut" and e["at"] == record["at"] for e in events)
    new = [c for c in chunks if c.take == record["take"]]
    assert new and new[0].start == pytest.approx(record["at"], abs=1e-3) and all(c.style == "swing" for c in new)
    old = [c for c in chunks if c.take < record["take"] and c.start >= record["at"] - 1e-6]
    assert old, "generation was ahead: the beats after the switch point were generated, then replaced"
    for key in ("encode_ms", "first_token_ms", "audio_ready_ms", "audible_ms"):
        assert record[key] >= 0
    assert record["audible_ms"] == pytest.approx((record["at"] - 0.5) * 1e3, abs=1)


def test_generation_keeps_ahead_of_a_playback_clock(demo):
    """A simulated clock running in real time for 8 s, with three switches: no chunk arrives late."""
    clock = FakeClock(-0.5)
    chunks = []
    live = session(demo, clock=clock, on_chunk=chunks.append)
    t0 = time.perf_counter() + 0.5
    with live:
        for when, style in ((2.0, "swing"), (4.0, "straight"), (6.0, "swing"), (8.0, None)):
            while clock.t < when:
                time.sleep(0.01)
                clock.t = time.perf_counter() - t0
            if style:
                live.switch(style)
    assert live.error is None
    assert live.stats["late"] == 0, f"chunks arrived after their time (min ahead {live.stats['min_ahead']} s)"
    played = [c for c in chunks if c.start < 8.0]
    covered = sorted({round(c.start, 4) for c in played})
    assert covered[0] == 0 and len(covered) >= int(8.0 / (live.seconds_per_tick * BEAT))  # every beat
    assert len([s for s in live.switches if "audio_ready_ms" in s]) == 3
    assert live.summary()["realtime_factor"] > 1


def test_a_dropped_decoder_is_freed_at_once(demo):
    """No reference cycle keeps a Decoder (and its KV cache) alive until the cyclic GC runs: a live
    session opens one per window, and with the cycle its memory grew by ~90 MB over 10 minutes of play."""
    import gc
    import weakref

    model, tokenizer = demo
    gc.disable()  # what is freed here is freed by reference counting alone
    try:
        for options in ({}, {"temperature": 0, "grammar": tokenizer.grammar}):
            dec = Decoder(model, [1, 5, 6], torch.zeros(model.config.n_mels, 32), max_new_tokens=8, **options)
            dec.step()
            snap = dec.snapshot()
            dec.restore(snap)
            alive = weakref.ref(dec)
            del dec, snap
            assert alive() is None, "the Decoder is in a reference cycle"
    finally:
        gc.enable()


def test_stop_releases_the_thread_and_the_decoders(demo):
    before = {t.ident for t in threading.enumerate()}
    live = session(demo, lookahead=0.5)
    live.start()
    assert live.running
    live.wait_until(0.3)
    live.stop()
    assert not live.running and live._windows == []
    assert not [t for t in threading.enumerate() if t.ident not in before and t.name == "mstoolkit-live"]
    live.start()  # starts over
    assert live.running
    live.stop()
    assert not live.running


def test_switch_to_an_uploaded_reference_and_bad_settings(demo):
    from mstoolkit.styles import render_style
    from mstoolkit.data import style_reference

    live = session(demo)
    name = live.add_reference("my groove", render_style(style_reference("bossa"), "bossa"))
    assert name in live.styles and live.colors[name].startswith("#")
    with pytest.raises(ValueError):
        session(demo, quantize="half-bar")


def test_content_is_read_by_intake_and_drums_stay_out_of_the_model(demo):
    import dataclasses

    from mstoolkit.piece import Note, load_piece, sample_paths

    model, tokenizer = demo
    chorale = load_piece(sample_paths()["bwv66.6"])
    kit = [Note(12 * i, 3, 42, 90, is_drum=True) for i in range(32)]
    song = dataclasses.replace(chorale, notes=chorale.notes + kit)
    live = LiveSession(model, song, tokenizer=tokenizer, style="straight", styles=["straight"], bars=4)
    assert "drums" in live.intake.account
    assert live.content.notes and not any(n.is_drum for n in live.content.notes)
    plain = LiveSession(model, "bwv66.6", tokenizer=tokenizer, style="straight", styles=["straight"], bars=4)
    assert live._windows_ids == plain._windows_ids  # the same content tokens as the file without drums
