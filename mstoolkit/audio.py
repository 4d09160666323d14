"""Audio: `Piece` -> waveform with a General-MIDI soundfont, log-mel spectrograms, inline playback.

    >>> audio = render(piece)            # float32 mono at 22050 Hz, peak-normalized
    >>> spec = mel(audio)                # (128, frames) log-mel in dB, librosa
    >>> spec_t = MelSpectrogram()(torch.from_numpy(audio))   # the same in torch (any device, batched)

Rendering backends (``render(..., backend="auto")`` tries them in this order):

1. ``"midirenderer"`` - a Rust SoundFont synthesizer (rustysynth) with a plain pip wheel; a required
   dependency of mstoolkit, so this is what a normal install uses. It renders at 48 kHz, which is then
   resampled to ``sample_rate`` (soxr, through librosa).
2. ``"tinysoundfont"`` - optional, about 4-5x faster at 22050 Hz (see benchmarks/results/audio.md).
   Its wheel declares ``pyaudio``, which has no Linux wheel, so install it with
   ``pip install --no-deps tinysoundfont``.
3. ``"fluidsynth"`` - pretty_midi's FluidSynth path; needs ``pyfluidsynth`` and the system libfluidsynth.
4. ``"sine"`` - ``pretty_midi.synthesize``: sine waves, no instrument timbre and no drums. ``"auto"``
   only lands here when no soundfont backend works, and then warns once, naming why each one failed.

All soundfont backends use the General-MIDI soundfont TimGM6mb.sf2 that ships inside pretty_midi's
wheel (:func:`default_soundfont`) unless ``soundfont=`` names another ``.sf2`` file. The backends
do not sound identical (midirenderer adds reverb; on a Bach chorale their log-mels differ by
3.6 dB on average), so build one data set with one backend: ``"auto"`` always prefers midirenderer.
"""
from __future__ import annotations

import functools
import io
import os
import warnings
import wave
from pathlib import Path

import librosa
import numpy as np
import pretty_midi
import torch

from mstoolkit.config import UserError
from mstoolkit.piece import Piece

SAMPLE_RATE = 22050
TAIL_SECONDS = 0.5  # silence appended after the last note so releases can ring out
DB_FLOOR = -80.0  # log-mel floor: dB = 10 * log10(max(power, 10 ** (DB_FLOOR / 10))), ref = 1.0
BACKENDS = ("midirenderer", "tinysoundfont", "fluidsynth", "sine")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")  # what load_audio is asked to read

_AMIN = 10.0 ** (DB_FLOOR / 10.0)
_DRUM_CHANNEL = 9
_warned: set[str] = set()


def default_soundfont() -> str:
    """Path of the General-MIDI soundfont TimGM6mb.sf2 shipped with pretty_midi."""
    return os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")


# --------------------------------------------------------------------------------- rendering
def render(
    piece: Piece,
    sample_rate: int = SAMPLE_RATE,
    soundfont: str | os.PathLike | None = None,
    tail: float = TAIL_SECONDS,
    backend: str = "auto",
) -> np.ndarray:
    """Synthesize ``piece`` with a General-MIDI soundfont; float32 mono, peak-normalized.

    The result has exactly ``round((piece.duration_seconds + tail) * sample_rate)`` samples: the
    piece, then ``tail`` seconds in which the last notes' releases decay. Its peak is scaled to 1.0
    (each render on its own), and a piece without notes renders to that many zeros.

        >>> from mstoolkit.piece import Note
        >>> audio = render(Piece([Note(0, 12, 60)]))   # one quarter note at 120 bpm: 0.5 s + 0.5 s tail
        >>> audio.shape
        (22050,)
    """
    if not isinstance(piece, Piece):
        raise ValueError(f"render: piece must be a mstoolkit Piece, got {type(piece).__name__}")
    if sample_rate <= 0 or tail < 0:
        raise ValueError(f"render: need sample_rate > 0 and tail >= 0, got {sample_rate} and {tail}")
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"render: unknown backend {backend!r}; choose 'auto' or one of {BACKENDS}")
    sf2 = os.fspath(soundfont) if soundfont is not None else default_soundfont()
    if not os.path.isfile(sf2):
        raise UserError(f"render: soundfont {sf2!r} is not a file")
    n_samples = int(round((piece.duration_seconds + tail) * sample_rate))
    if not piece.notes:
        return np.zeros(n_samples, dtype=np.float32)

    pm = piece.to_pretty_midi()
    if tail > 0:  # a no-op event (sustain pedal off) at the end, so MIDI players run through the tail
        pm.instruments[0].control_changes.append(
            pretty_midi.ControlChange(number=64, value=0, time=piece.duration_seconds + tail)
        )
    audio = _synthesize(pm, sample_rate, sf2, backend)  # (samples,) float32, any length
    audio = np.pad(audio[:n_samples], (0, max(0, n_samples - len(audio))))
    peak = float(np.max(np.abs(audio)))
    return (audio / peak if peak > 0 else audio).astype(np.float32)


def _synthesize(pm: pretty_midi.PrettyMIDI, sample_rate: int, sf2: str, backend: str) -> np.ndarray:
    """Run one backend, or for ``"auto"`` the first that is available; raw mono float32 out."""
    renderers = {
        "midirenderer": _render_midirenderer,
        "tinysoundfont": _render_tinysoundfont,
        "fluidsynth": _render_fluidsynth,
        "sine": _render_sine,
    }
    if backend != "auto":
        return renderers[backend](pm, sample_rate, sf2)
    failures = []
    for name in BACKENDS[:-1]:
        try:
            return renderers[name](pm, sample_rate, sf2)
        except ImportError as err:  # backend not installed: try the next one
            failures.append(f"{name}: {err}")
    message = (
        "mstoolkit.audio.render: no soundfont backend is available, falling back to sine waves "
        "(no instrument timbre, no drums). Reasons: " + "; ".join(failures)
    )
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    return renderers["sine"](pm, sample_rate, sf2)


@functools.lru_cache(maxsize=4)
def _read_soundfont(path: str) -> bytes:
    return Path(path).read_bytes()


def _render_midirenderer(pm: pretty_midi.PrettyMIDI, sample_rate: int, sf2: str) -> np.ndarray:
    try:
        import midirenderer
    except ImportError as err:
        raise ImportError(f"the midirenderer backend needs `pip install midirenderer` ({err})") from err
    buffer = io.BytesIO()
    pm.write(buffer)
    try:
        wav = midirenderer.render_wave_from(_read_soundfont(sf2), buffer.getvalue())
    except RuntimeError as err:  # e.g. "SoundFont error: the RIFF chunk was not found"
        raise ValueError(f"render: midirenderer failed on soundfont {sf2!r}: {err}") from err
    with wave.open(io.BytesIO(wav)) as f:  # 16-bit PCM, stereo, 48 kHz
        frames = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").reshape(-1, f.getnchannels())
        rate = f.getframerate()
    audio = frames.mean(axis=1, dtype=np.float32) / 32768.0  # (samples,)
    if rate != sample_rate:
        audio = librosa.resample(audio, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
    return audio


def _render_tinysoundfont(pm: pretty_midi.PrettyMIDI, sample_rate: int, sf2: str) -> np.ndarray:
    try:
        import tinysoundfont
    except ImportError as err:
        raise ImportError(
            f"the tinysoundfont backend needs `pip install --no-deps tinysoundfont` ({err})"
        ) from err
    synth = tinysoundfont.Synth(samplerate=sample_rate)
    try:
        synth.sfload(sf2)
    except RuntimeError as err:
        raise ValueError(f"render: tinysoundfont cannot load soundfont {sf2!r}: {err}") from err
    melodic = [c for c in range(16) if c != _DRUM_CHANNEL]
    events = []  # (sample, is_note_on, channel, pitch, velocity); offs sort before ons at a tie
    for index, inst in enumerate(pm.instruments):
        channel = _DRUM_CHANNEL if inst.is_drum else melodic[index % len(melodic)]
        try:
            synth.program_change(channel, inst.program, inst.is_drum)
        except RuntimeError:  # preset missing from this soundfont: use its first program
            synth.program_change(channel, 0, inst.is_drum)
        for n in inst.notes:
            events.append((int(round(n.start * sample_rate)), 1, channel, n.pitch, n.velocity))
            events.append((int(round(n.end * sample_rate)), 0, channel, n.pitch, 0))
    events.sort()
    total = int(round(pm.get_end_time() * sample_rate))
    out = np.zeros((total, 2), dtype=np.float32)  # (samples, stereo)
    position = 0
    for sample, is_on, channel, pitch, velocity in events:
        if sample > position:
            out[position:sample] = np.frombuffer(synth.generate(sample - position), np.float32).reshape(-1, 2)
            position = sample
        if is_on:
            synth.noteon(channel, pitch, velocity)
        else:
            synth.noteoff(channel, pitch)
    if total > position:
        out[position:] = np.frombuffer(synth.generate(total - position), np.float32).reshape(-1, 2)
    return out.mean(axis=1)


def _render_fluidsynth(pm: pretty_midi.PrettyMIDI, sample_rate: int, sf2: str) -> np.ndarray:
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; loading it also loads the system libfluidsynth)
    except (ImportError, OSError) as err:
        raise ImportError(f"the fluidsynth backend needs pyfluidsynth and libfluidsynth ({err})") from err
    return pm.fluidsynth(fs=sample_rate, sf2_path=sf2).astype(np.float32)


def _render_sine(pm: pretty_midi.PrettyMIDI, sample_rate: int, sf2: str) -> np.ndarray:
    if not any(inst.notes for inst in pm.instruments if not inst.is_drum):
        return np.zeros(0, dtype=np.float32)  # pretty_midi skips drums (and would divide 0 by 0)
    return pm.synthesize(fs=sample_rate).astype(np.float32)


# --------------------------------------------------------------------------------- mel spectrograms
def _check_audio(audio, name: str = "audio") -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D (mono) array, got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"{name}: contains NaN or infinite samples")
    return audio


def mel(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    n_mels: int = 128,
    n_fft: int = 2048,
    hop_length: int = 512,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> np.ndarray:
    """Log-mel spectrogram in dB, ``(n_mels, 1 + len(audio) // hop_length)`` float32, via librosa.

    Power mel spectrogram (Hann window, centred frames with zero padding, Slaney mel filters),
    then ``10 * log10(max(power, amin))`` with a fixed reference of 1.0 and a fixed floor of
    ``DB_FLOOR`` (-80 dB): the same audio level gives the same dB in every clip, which a style
    encoder needs (``ref=np.max`` would rescale each clip on its own).

        >>> mel(np.zeros(22050)).shape
        (128, 44)
    """
    audio = _check_audio(audio)
    power = librosa.feature.melspectrogram(
        y=audio, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, window="hann", center=True,
        pad_mode="constant", power=2.0, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney",
    )  # (n_mels, frames)
    return librosa.power_to_db(power, ref=1.0, amin=_AMIN, top_db=None).astype(np.float32)


class MelSpectrogram(torch.nn.Module):
    """Torch log-mel spectrogram that matches :func:`mel`, batched, on any device.

    ``(B, samples) -> (B, n_mels, frames)`` and ``(samples,) -> (n_mels, frames)`` in dB, computed
    in float32 (autocast is switched off inside). Uses ``torch.stft`` with librosa's defaults
    (periodic Hann window, centred frames, zero padding) and librosa's Slaney mel filterbank as a
    buffer (not saved in state_dict: it follows from the arguments).

    Agreement with :func:`mel` (float32; asserted in tests/test_audio.py on rendered music and on
    white noise): max abs difference < 0.1 dB, and max |power_torch - power_librosa| < 1e-5 of the
    clip's largest mel power. Measured: at most 0.06 dB, in bins within a few dB of the -80 dB
    floor where float32 FFT rounding matters; mean about 3e-5 dB; power error about 3e-7 of the
    peak (benchmarks/results/audio.md, CPU and CUDA).

        >>> MelSpectrogram()(torch.randn(4, 22050)).shape
        torch.Size([4, 128, 44])
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_mels: int = 128,
        n_fft: int = 2048,
        hop_length: int = 512,
        fmin: float = 0.0,
        fmax: float | None = None,
    ) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        filters = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("mel_basis", torch.from_numpy(filters), persistent=False)  # (n_mels, n_fft//2+1)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)  # (n_fft,)

    def power(self, audio: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram (before dB): ``(..., samples) -> (..., n_mels, frames)``."""
        if audio.dim() not in (1, 2) or audio.shape[-1] == 0:
            raise ValueError(f"MelSpectrogram: expected (samples,) or (B, samples), got {tuple(audio.shape)}")
        with torch.autocast(device_type=audio.device.type, enabled=False):
            spec = torch.stft(
                audio.float(), self.n_fft, self.hop_length, window=self.window, center=True,
                pad_mode="constant", return_complex=True,
            )  # (..., n_fft//2+1, frames)
            return self.mel_basis @ (spec.real**2 + spec.imag**2)  # (..., n_mels, frames)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(self.power(audio).clamp_min(_AMIN))  # (..., n_mels, frames) dB


# --------------------------------------------------------------------------------- files and playback
def play(x: Piece | np.ndarray, sample_rate: int = SAMPLE_RATE):
    """An ``IPython.display.Audio`` player for a Piece (rendered first) or a mono audio array.

        >>> player = play(piece)   # a notebook cell ending in play(piece) shows an inline audio player
    """
    from IPython.display import Audio

    audio = render(x, sample_rate) if isinstance(x, Piece) else _check_audio(x, "play")
    # Keep the level as given when it already fits in [-1, 1] (IPython would divide silence by 0).
    return Audio(data=audio, rate=sample_rate, normalize=bool(np.max(np.abs(audio)) > 1.0))


def save_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono ``audio`` (samples in [-1, 1]) as a 16-bit PCM WAV file.

        >>> save_wav("out.wav", render(piece))
    """
    import soundfile

    audio = _check_audio(audio, f"save_wav({os.fspath(path)!r})")
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:
        raise ValueError(f"save_wav({os.fspath(path)!r}): peak {peak:.3g} exceeds 1.0; divide by the peak first")
    soundfile.write(os.fspath(path), audio, sample_rate, subtype="PCM_16")


QUIET_DB = -60.0  # peak_normalize leaves audio quieter than this (dBFS) alone: silence stays silence


def peak_normalize(audio: np.ndarray, quiet_db: float = QUIET_DB) -> np.ndarray:
    """``audio`` scaled so its peak is 1.0, the level :func:`render` gives every training reference;
    audio whose peak is below ``quiet_db`` dBFS is returned as is (scaling dither up would make noise).

    Why: the style encoder only ever heard references at peak 1.0, and a recording's level is not its
    style (the demo model, references 20 dB quieter: transfer style accuracy 0.64, against 1.00 at
    peak 1.0; ``benchmarks/results/reference_robustness.md``).

        >>> float(peak_normalize(np.array([0.0, 0.25, -0.5])).max())
        0.5
    """
    audio = _check_audio(audio, "peak_normalize")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 10.0 ** (quiet_db / 20.0):
        return audio
    return (audio / peak).astype(np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file (WAV, FLAC, OGG, MP3, ...; any sample rate, stereo averaged) as float32 mono
    resampled to ``sample_rate``; UserError naming the file when it cannot be read.

        >>> reference = load_audio("swing_reference.wav")  # doctest: +SKIP
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"load_audio: {path!r} is not a file")
    try:
        with warnings.catch_warnings():  # librosa warns before trying audioread on non-soundfile input
            warnings.simplefilter("ignore")
            audio, _ = librosa.load(path, sr=sample_rate, mono=True)
    except Exception as err:  # soundfile and audioread raise assorted types for unreadable files
        why = str(err) or "neither soundfile nor audioread can decode it"  # audioread's NoBackendError is blank
        raise UserError(f"load_audio: cannot read {path!r} as audio: {type(err).__name__}: {why}") from err
    if audio.size == 0:
        raise UserError(f"load_audio: {path!r} contains no audio samples")
    return audio.astype(np.float32)
