"""StyleRecognizer with the shipped demo model: known styles are recognised, speech, silence and noise
are not, the build is cached, audio files of every common format and rate are read, bad input is
explained. One small build (3 + 2 windows) into a temporary cache serves the whole module."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile

from mstoolkit import audio
from mstoolkit.checkpoint import load_with_tokenizer
from mstoolkit.config import UserError
from mstoolkit.generate import reference_mel
from mstoolkit.piece import load_piece, sample_paths
from mstoolkit.recognize import NOISE_FLATNESS, Heard, StyleRecognizer, encoder_fingerprint, spectral_flatness
from mstoolkit.shipped import shipped_path
from mstoolkit.styles import list_styles, render_style

SR = audio.SAMPLE_RATE
BUILD = dict(windows=3, held_out=2, progress=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("recognizer-cache")


@pytest.fixture(scope="module")
def model():
    return load_with_tokenizer("demo")[0]


@pytest.fixture(scope="module")
def recognizer(model, cache):
    return StyleRecognizer.from_model(model, cache_dir=cache, **BUILD)


@pytest.fixture(scope="module")
def swing_wave():
    """A swing reference the recognizer never saw: bars 8-11 of bwv304 (the build uses bars 0-3)."""
    window = load_piece(sample_paths()["bwv304"]).slice_bars(8, 4)
    return audio.render(render_style(window, "swing"))


def test_shipped_references_are_recognised_as_their_style(recognizer):
    window = load_piece(sample_paths()["bwv347"]).slice_bars(4, 4)  # not among the 3 + 2 build windows
    for style in list_styles():
        heard = recognizer.recognize(render_style(window, style))
        assert heard.known and heard.style == style, (style, str(heard), heard.reason)
        assert heard.ranking[0][1] == max(c for _, c in heard.ranking)
        assert abs(sum(c for _, c in heard.ranking) - 1) < 1e-6


@pytest.mark.parametrize("what", ["speech", "silence", "white noise"])
def test_speech_silence_and_noise_match_no_known_style(recognizer, what):
    rng = np.random.default_rng(0)
    reference = {"speech": shipped_path("audio", "speech_gettysburg.ogg"),
                 "silence": np.zeros(6 * SR, np.float32),
                 "white noise": (rng.uniform(-1, 1, 6 * SR)).astype(np.float32)}[what]
    heard = recognizer.recognize(reference)
    assert not heard.known and heard.style is None
    assert str(heard).startswith("matches no known style")
    if what == "silence":
        assert heard.silent and "silence" in str(heard) and "closest" not in str(heard)
    elif what == "white noise":  # told by its flat spectrum, whatever the encoder makes of it
        assert "noise (spectral flatness" in str(heard) and f"(closest: {heard.ranking[0][0]})" in str(heard)
    else:
        assert heard.distance > recognizer.threshold and f"(closest: {heard.ranking[0][0]})" in str(heard)


def test_music_under_noise_is_not_taken_for_noise(recognizer, swing_wave):
    rng = np.random.default_rng(1)
    power = float(np.mean(swing_wave.astype(np.float64) ** 2))
    for snr_db in (20, 10):
        noisy = swing_wave + rng.standard_normal(len(swing_wave)) * np.sqrt(power / 10 ** (snr_db / 10))
        spec = recognizer.mel(noisy.astype(np.float32))
        assert spectral_flatness(spec) < NOISE_FLATNESS / 2, snr_db
        assert "noise (spectral flatness" not in recognizer.recognize(noisy.astype(np.float32)).reason


def test_the_shipped_speech_is_small_mono_22050(recognizer):
    path = shipped_path("audio", "speech_gettysburg.ogg")
    info = soundfile.info(path)
    assert path.stat().st_size < 200_000 and info.samplerate == SR and info.channels == 1
    assert 5 < info.duration < 8


def test_the_build_is_cached_and_reused(model, cache, recognizer, monkeypatch):
    assert recognizer.path is not None and recognizer.path.parent == cache / "recognizer"
    assert not list(recognizer.path.parent.glob("*.tmp"))  # written atomically, nothing left behind

    def no_render(*args, **kwargs):
        raise AssertionError("a cached recognizer must not render anything")

    monkeypatch.setattr(audio, "render", no_render)
    again = StyleRecognizer.from_model(model, cache_dir=cache, **BUILD)
    assert again.path == recognizer.path and again.threshold == recognizer.threshold
    np.testing.assert_allclose(again.centroids, recognizer.centroids)
    # other weights -> another key: the cache never answers for a different encoder
    other = load_with_tokenizer("debug")[0]
    assert encoder_fingerprint(other.style_encoder) != encoder_fingerprint(model.style_encoder)


def test_calibration_evidence_is_recorded(recognizer):
    cal = recognizer.calibration
    assert cal["held_out"]["clean"]["accuracy"] == 1.0
    assert max(c["max_distance"] for c in cal["held_out"].values()) <= recognizer.threshold
    assert min(cal["negatives_distance"].values()) > recognizer.threshold
    assert 1.0 <= recognizer.scale <= 100.0


@pytest.mark.parametrize("fmt,subtype,suffix", [("WAV", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac"),
                                                ("OGG", "VORBIS", "ogg"), ("MP3", "MPEG_LAYER_III", "mp3")])
def test_audio_formats_are_read_and_recognised(recognizer, swing_wave, tmp_path, fmt, subtype, suffix):
    path = tmp_path / f"swing.{suffix}"
    soundfile.write(path, swing_wave * 0.9, SR, format=fmt, subtype=subtype)
    loaded = audio.load_audio(path)
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    assert abs(len(loaded) - len(swing_wave)) < 0.1 * SR  # MP3 adds a little padding
    assert recognizer.recognize(path).style == "swing"
    assert reference_mel(path).shape[0] == 128  # what transfer() reads


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_sample_rates_and_stereo(recognizer, swing_wave, tmp_path, rate):
    import librosa

    wave = librosa.resample(swing_wave, orig_sr=SR, target_sr=rate) * 0.9
    stereo = np.stack([wave, 0.7 * wave], axis=1)  # (samples, 2)
    path = tmp_path / f"swing_{rate}.wav"
    soundfile.write(path, stereo, rate, subtype="PCM_16")
    loaded = audio.load_audio(path)
    assert loaded.ndim == 1 and abs(len(loaded) - len(swing_wave)) <= 2  # mono, back at 22050 Hz
    heard = recognizer.recognize(path)
    assert heard.known and heard.style == "swing", str(heard)


def test_bad_input_is_a_user_error_naming_it(recognizer, model, tmp_path):
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio")
    with pytest.raises(UserError, match="cannot read.*notes.wav.*as audio: NoBackendError: neither"):
        recognizer.recognize(not_audio)
    with pytest.raises(UserError, match="missing.flac.*no such file"):
        recognizer.recognize(tmp_path / "missing.flac")
    bad_midi = tmp_path / "broken.mid"
    bad_midi.write_bytes(b"MThd nonsense")
    with pytest.raises(UserError, match="broken.mid"):
        recognizer.recognize(bad_midi)
    with pytest.raises(UserError, match="too short"):
        recognizer.recognize(np.zeros(SR // 4, np.float32))
    with pytest.raises(UserError, match="NaN"):
        recognizer.recognize(np.full(SR * 2, np.nan, np.float32))
    with pytest.raises(UserError, match="shape"):
        recognizer.recognize(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(UserError, match="got NoneType"):
        recognizer.recognize(None)
    with pytest.raises(UserError, match="windows must be an integer >= 1"):
        StyleRecognizer.from_model(model, windows=0, progress=False)
    with pytest.raises(UserError, match="MusicStyleTransformer or a StyleEncoder"):
        StyleRecognizer.from_model("demo", progress=False)


def test_heard_reads_like_a_sentence():
    heard = Heard((("swing", 0.912), ("shuffle", 0.061), ("straight", 0.02), ("waltz", 0.007)),
                  {}, 0.97, 3.0, True, "distance 3.0 <= 10.0", -2.0)
    assert str(heard) == "swing 0.91, shuffle 0.06, straight 0.02"
    unknown = Heard((("stride", 0.4), ("waltz", 0.3), ("bossa", 0.2)), {}, 0.7, 14.0, False,
                    "unlike every known style (distance 14.0 > 10.0)", -5.0)
    assert str(unknown) == ("matches no known style: unlike every known style (distance 14.0 > 10.0) "
                            "(closest: stride)")


def test_a_gate_must_also_accept_a_reference_and_is_named_when_it_refuses(model, cache, recognizer, swing_wave):
    """demo_v2's encoder (trained on augmented references) with the demo's recognizer as its gate, as the CLI
    and the widgets build it: music is still named by demo_v2, speech is refused."""
    import dataclasses

    assert StyleRecognizer.from_model(model, cache_dir=cache, gate="demo", **BUILD).gate is None  # same encoder
    v2 = load_with_tokenizer("demo_v2")[0]
    gated = StyleRecognizer.from_model(v2, cache_dir=cache, gate="demo", **BUILD)
    assert gated.gate is not None and gated.gate.path == recognizer.path and gated.gate_name == "demo"
    assert gated.recognize(swing_wave).style == "swing"
    assert not gated.recognize(shipped_path("audio", "speech_gettysburg.ogg")).known
    # the rule itself: a gate that refuses everything refuses, and says so; one that accepts all changes nothing
    alone = dataclasses.replace(gated, gate=None).recognize(swing_wave)
    strict = dataclasses.replace(gated, gate=dataclasses.replace(recognizer, threshold=0.0), gate_name="strict")
    refused = strict.recognize(swing_wave)
    assert not refused.known and refused.reason.endswith("to the strict model's style encoder")
    lenient = dataclasses.replace(gated, gate=dataclasses.replace(recognizer, threshold=1e9)).recognize(swing_wave)
    assert lenient.known and lenient.ranking == alone.ranking and lenient.distance == alone.distance
