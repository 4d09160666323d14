"""Tests for mstoolkit.audio: soundfont rendering, log-mel (librosa and torch), playback and WAV files."""
import importlib.util
import warnings

import librosa
import numpy as np
import pytest
import soundfile
import torch

from mstoolkit import audio
from mstoolkit.piece import Note, Piece, TempoChange

SR = 16000  # a lower rate keeps the tests quick; the defaults are exercised where it matters


def melody(program: int = 0, n: int = 4, tempo: float = 120.0) -> Piece:
    """``n`` quarter notes of one program (0.5 s each at 120 bpm)."""
    notes = [Note(i * 12, 12, 67 + (i % 3) * 2, 90, program=program) for i in range(n)]
    return Piece(notes, tempos=[TempoChange(0, tempo)])


def expected_length(piece: Piece, sample_rate: int, tail: float = audio.TAIL_SECONDS) -> int:
    return int(round((piece.duration_seconds + tail) * sample_rate))


@pytest.fixture(scope="module")
def rendered() -> np.ndarray:
    """Two seconds of piano and flute together at the default sample rate."""
    piece = Piece(melody(0).notes + [Note(0, 36, 72, 70, program=73)])
    return audio.render(piece)


# ------------------------------------------------------------------------------------------ render
def test_render_is_nonsilent_finite_normalized_and_right_length(rendered):
    assert rendered.dtype == np.float32 and rendered.ndim == 1
    assert len(rendered) == int(round((2.0 + audio.TAIL_SECONDS) * audio.SAMPLE_RATE))
    assert np.all(np.isfinite(rendered))
    assert np.max(np.abs(rendered)) == pytest.approx(1.0)
    assert np.sqrt(np.mean(rendered**2)) > 0.01  # clearly audible, not a click


@pytest.mark.parametrize("tail", [0.0, 0.25])
def test_render_length_follows_tempo_and_tail(tail):
    piece = melody(n=3, tempo=90.0)  # 3 quarters at 90 bpm = 2 s
    out = audio.render(piece, sample_rate=SR, tail=tail)
    assert len(out) == expected_length(piece, SR, tail) == int(round((2.0 + tail) * SR))


def test_release_tail_rings_out():
    out = audio.render(melody(n=1), sample_rate=SR, tail=0.5)  # note 0-0.5 s, tail 0.5-1.0 s
    assert np.max(np.abs(out[int(0.55 * SR) : int(0.7 * SR)])) > 1e-3


def test_empty_piece_renders_silence_of_tail_length():
    out = audio.render(Piece([]), sample_rate=SR)
    assert out.dtype == np.float32 and len(out) == int(round(audio.TAIL_SECONDS * SR))
    assert not np.any(out)


def test_drums_render():
    drums = Piece([Note(i * 6, 3, 36 if i % 2 == 0 else 42, 100, is_drum=True) for i in range(8)])
    out = audio.render(drums, sample_rate=SR)
    assert len(out) == expected_length(drums, SR)
    assert np.sqrt(np.mean(out**2)) > 0.01


def test_programs_sound_different():
    """The soundfont really is used: piano and flute on the same notes differ in brightness."""
    centroid = {
        program: librosa.feature.spectral_centroid(y=audio.render(melody(program), sample_rate=SR), sr=SR).mean()
        for program in (0, 73)  # acoustic grand piano, flute
    }
    assert abs(centroid[0] - centroid[73]) > 0.15 * centroid[0]


def test_sine_fallback_warns_once_and_names_the_reasons(monkeypatch):
    def missing(*args):
        raise ImportError("not here")

    for name in ("_render_midirenderer", "_render_tinysoundfont", "_render_fluidsynth"):
        monkeypatch.setattr(audio, name, missing)
    monkeypatch.setattr(audio, "_warned", set())
    piece = melody(n=2)
    with pytest.warns(RuntimeWarning, match="midirenderer: not here"):
        first = audio.render(piece, sample_rate=SR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would fail here
        second = audio.render(piece, sample_rate=SR)
    np.testing.assert_array_equal(first, second)
    assert len(first) == expected_length(piece, SR) and np.max(np.abs(first)) == pytest.approx(1.0)


def test_sine_backend_on_drums_only_is_silence():
    drums = Piece([Note(0, 6, 36, 100, is_drum=True)])
    out = audio.render(drums, sample_rate=SR, backend="sine")
    assert len(out) == expected_length(drums, SR) and not np.any(out)


@pytest.mark.skipif(importlib.util.find_spec("tinysoundfont") is None, reason="tinysoundfont not installed")
def test_tinysoundfont_backend_agrees_in_length_and_timbre():
    piece = melody(73)
    a = audio.render(piece, sample_rate=SR, backend="midirenderer")
    b = audio.render(piece, sample_rate=SR, backend="tinysoundfont")
    assert len(a) == len(b)
    ca, cb = (librosa.feature.spectral_centroid(y=x, sr=SR).mean() for x in (a, b))
    assert abs(ca - cb) < 0.15 * ca


def test_render_bad_arguments(tmp_path):
    piece = melody(n=1)
    with pytest.raises(ValueError, match="Piece"):
        audio.render([Note(0, 12, 60)])
    with pytest.raises(ValueError, match="unknown backend"):
        audio.render(piece, backend="casio")
    with pytest.raises(ValueError, match="nope.sf2"):
        audio.render(piece, soundfont=tmp_path / "nope.sf2")
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF not a soundfont")
    with pytest.raises(ValueError, match="bad.sf2"):
        audio.render(piece, soundfont=bad, backend="midirenderer")


@pytest.mark.skipif(importlib.util.find_spec("fluidsynth") is not None, reason="pyfluidsynth is installed")
def test_unavailable_backend_says_what_to_install():
    with pytest.raises(ImportError, match="pyfluidsynth"):
        audio.render(melody(n=1), backend="fluidsynth")


# ------------------------------------------------------------------------------------------ mel
def test_mel_shape_and_floor():
    spec = audio.mel(np.zeros(10_000, dtype=np.float32), n_mels=64, hop_length=256)
    assert spec.shape == (64, 1 + 10_000 // 256) and spec.dtype == np.float32
    assert np.all(spec == pytest.approx(audio.DB_FLOOR))


def test_mel_hop_seconds_is_one_frame_of_the_default_mel():
    """config.MEL_HOP_SECONDS and SAMPLE_RATE (used where the audio stack is not imported) follow audio.mel's defaults."""
    from mstoolkit.config import MEL_HOP_SECONDS, SAMPLE_RATE

    assert SAMPLE_RATE == audio.SAMPLE_RATE

    one_second = audio.mel(np.zeros(audio.SAMPLE_RATE * 4, dtype=np.float32)).shape[1] / 4
    assert one_second == pytest.approx(1 / MEL_HOP_SECONDS, abs=0.5)


def test_mel_of_music_spans_a_real_range(rendered):
    spec = audio.mel(rendered)
    assert spec.shape == (128, 1 + len(rendered) // 512)
    assert spec.min() >= audio.DB_FLOOR - 1e-3 and spec.max() > 0.0


@pytest.mark.parametrize("bad", [np.zeros((2, 100)), np.zeros(0), np.array([0.0, np.nan, 0.0])])
def test_mel_rejects_bad_audio(bad):
    with pytest.raises(ValueError, match="audio"):
        audio.mel(bad)


def noise() -> np.ndarray:
    return (0.3 * np.random.default_rng(0).standard_normal(3 * audio.SAMPLE_RATE)).astype(np.float32)


@pytest.mark.parametrize("source", ["rendered", "noise"])
def test_torch_mel_matches_librosa(source, rendered):
    """The tolerance stated in MelSpectrogram's docstring: 0.1 dB, and 1e-5 of the peak mel power."""
    x = rendered if source == "rendered" else noise()
    module = audio.MelSpectrogram()
    ours = module(torch.from_numpy(x)).numpy()
    reference = audio.mel(x)
    assert ours.shape == reference.shape
    assert np.max(np.abs(ours - reference)) < 0.1
    power_ref = librosa.feature.melspectrogram(y=x, sr=audio.SAMPLE_RATE, n_fft=2048, hop_length=512, n_mels=128)
    power_ours = module.power(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(power_ours - power_ref)) < 1e-5 * power_ref.max()


def test_torch_mel_with_custom_parameters_matches_librosa():
    x = noise()[:20_000]
    kwargs = dict(sample_rate=SR, n_mels=40, n_fft=1024, hop_length=160, fmin=50.0, fmax=7000.0)
    ours = audio.MelSpectrogram(**kwargs)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, audio.mel(x, **kwargs), atol=0.1)


def test_batched_torch_mel_equals_per_item(rendered):
    batch = torch.from_numpy(np.stack([rendered[:30_000], noise()[:30_000], np.zeros(30_000, np.float32)]))
    module = audio.MelSpectrogram(n_mels=64)
    together = module(batch)  # (3, 64, frames)
    assert together.shape == (3, 64, 1 + 30_000 // 512)
    for i in range(3):
        torch.testing.assert_close(together[i], module(batch[i]), atol=1e-3, rtol=0)


def test_torch_mel_ignores_autocast_and_rejects_bad_shapes():
    module = audio.MelSpectrogram(n_mels=32)
    x = torch.from_numpy(noise()[:8000])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, module(x))
    with pytest.raises(ValueError, match="samples"):
        module(torch.zeros(2, 1, 100))
    assert "mel_basis" not in module.state_dict()


# ------------------------------------------------------------------------------------------ play and files
def test_play_piece_and_array():
    player = audio.play(melody(n=1), sample_rate=SR)
    assert player.data[:4] == b"RIFF" and len(player.data) > 2 * SR * 0.5
    loud = audio.play(np.full(100, 2.0, dtype=np.float32))  # out of [-1, 1]: IPython normalizes
    silent = audio.play(np.zeros(100, dtype=np.float32))  # silence stays silence, no division by 0
    assert loud.data[:4] == silent.data[:4] == b"RIFF"
    assert set(silent.data[44:]) == {0}


def test_save_and_load_round_trip(tmp_path, rendered):
    path = tmp_path / "clip.wav"
    audio.save_wav(path, rendered, audio.SAMPLE_RATE)
    back = audio.load_audio(path)
    assert back.dtype == np.float32 and back.shape == rendered.shape
    assert np.max(np.abs(back - rendered)) <= 1.0 / 32767 + 1e-6  # 16-bit quantization
    assert len(audio.load_audio(path, sample_rate=SR)) == pytest.approx(len(rendered) * SR / audio.SAMPLE_RATE, abs=2)


def test_save_wav_refuses_clipping(tmp_path):
    with pytest.raises(ValueError, match="loud.wav.*exceeds"):
        audio.save_wav(tmp_path / "loud.wav", np.full(10, 1.5, dtype=np.float32), SR)


def test_load_audio_bad_files(tmp_path):
    with pytest.raises(ValueError, match="missing.wav"):
        audio.load_audio(tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(ValueError, match="garbage.wav"):
        audio.load_audio(garbage)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), SR)
    with pytest.raises(ValueError, match="empty.wav.*no audio"):
        audio.load_audio(empty)
