"""Reference augmentation: what a real recording does to a StyleBench reference, so the style encoder
learns the style from rhythm, texture and articulation instead of from one soundfont's instruments.

In StyleBench every style is played by its own fixed General-MIDI programs, so a style encoder trained
on it can name the style from the timbre alone; with a clarinet or an organ as the reference it fails
(``benchmarks/results/reference_robustness.md``: recognised 0.31-0.33). Two augmentations fix the
training side of that:

* :func:`with_timbre` re-instruments a reference with programs drawn from :data:`TIMBRE_POOL` (rendered
  by the soundfont and cached like any reference mel, see ``StyleBench.mel(..., timbre=k)``), and
  :func:`in_another_register` moves it by a random interval (``StyleBench.mel(..., transpose=N)``): a
  user's recording is in its own key and register, while StyleBench plays each style in the corpus's;
* :func:`room_and_noise` adds, in the log-mel domain, a reverberant tail and a noise floor at random
  levels: cheap enough for every training item, no audio needed;
* :func:`overtones_and_colour` gives a reference, also in the log-mel domain, another instrument's
  balance of overtones (an organ's octave and twelfth stops) and another microphone or file's colour
  (a tilt, a low-pass): timbres no set of redrawn programs covers, at no rendering cost.

The programs the robustness benchmark uses as "instruments never heard in training"
(:data:`HELD_OUT_PROGRAMS`) are kept out of the pool, so that table stays a test of generalisation.

    >>> piece = with_timbre(piece, seed=3)  # doctest: +SKIP
    >>> piece = in_another_register(piece, seed=3, max_semitones=12)  # doctest: +SKIP
    >>> mel = room_and_noise(torch.from_numpy(bench.mel(window, "swing")))  # doctest: +SKIP
    >>> mel = overtones_and_colour(mel)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random

import torch

from mstoolkit.config import MEL_HOP_SECONDS, SAMPLE_RATE
from mstoolkit.piece import Piece

# The robustness benchmark's unseen instruments (vibraphone, church organ, clarinet): never drawn here.
HELD_OUT_PROGRAMS = (11, 19, 71)
# Melodic General-MIDI programs: pianos to ethnic instruments (0-111), without percussive and sound
# effects (112-127) and without the held-out test instruments.
TIMBRE_POOL = tuple(p for p in range(112) if p not in HELD_OUT_PROGRAMS)


def with_timbre(piece: Piece, seed: int) -> Piece:
    """``piece`` with its instruments redrawn from :data:`TIMBRE_POOL` (drums stay as they are).

    Half of the draws give each program of the piece its own new program (a melody and an
    accompaniment stay two timbres), the other half one program for every note (a solo instrument).
    The same ``seed`` always gives the same instruments.

        >>> sorted({n.program for n in with_timbre(Piece([Note(0, 12, 60, program=0)]), 1).notes})  # doctest: +SKIP
        [74]
    """
    rng = random.Random(seed)
    programs = sorted({n.program for n in piece.notes if not n.is_drum})
    if rng.random() < 0.5:
        solo = rng.choice(TIMBRE_POOL)
        new = {p: solo for p in programs}
    else:
        new = {p: rng.choice(TIMBRE_POOL) for p in programs}
    return piece.replace(notes=[n if n.is_drum else dataclasses.replace(n, program=new[n.program])
                                for n in piece.notes])


def in_another_register(piece: Piece, seed: int, max_semitones: int) -> Piece:
    """``piece`` moved by a random interval of at most ``max_semitones`` up or down (drums stay).

    The interval is drawn uniformly from ``[-max_semitones, max_semitones]`` narrowed so every pitch stays
    on the piano's keys (21-108), where the soundfont's instruments sound; a piece wider than the
    keyboard is moved by whatever keeps it in MIDI's 0-127. The same ``seed`` always gives the same interval.

        >>> in_another_register(Piece([Note(0, 12, 60)]), seed=1, max_semitones=12).notes[0].pitch  # doctest: +SKIP
        55
    """
    if max_semitones < 0:
        raise ValueError(f"max_semitones must be >= 0, got {max_semitones!r}")
    pitches = [n.pitch for n in piece.notes if not n.is_drum]
    if not pitches or max_semitones == 0:
        return piece
    low, high = min(pitches), max(pitches)
    lowest, highest = (21, 108) if high - low <= 108 - 21 else (0, 127)
    down, up = max(-max_semitones, lowest - low), min(max_semitones, highest - high)
    if down > up:  # already outside the keys: leave it where it is
        return piece
    return piece.transpose(random.Random(seed).randint(down, up))


def room_and_noise(mel: torch.Tensor, generator: torch.Generator | None = None, *,
                   reverb_probability: float = 0.5, noise_probability: float = 0.5,
                   rt60: tuple[float, float] = (0.2, 2.0), tail_db: tuple[float, float] = (-12.0, 3.0),
                   snr_db: tuple[float, float] = (10.0, 45.0)) -> torch.Tensor:
    """A log-mel ``(n_mels, frames)`` in dB as if played in a room and recorded with noise.

    Works on power, ``10 ** (dB / 10)``: a reverberant tail is each band's power convolved along time
    with an exponential decay (``-60 dB`` after ``RT60`` seconds; level ``tail_db`` against the dry
    sound, i.e. a direct-to-reverberant ratio of ``-tail_db``), and noise is a floor of constant power
    in every band (white noise through area-normalised Slaney filters) ``snr_db`` below the mean
    power of the clip (measured on a render: a floor at ``snr_db`` here sits about 5 dB above that of
    white noise added to the waveform at the same SNR). Each is applied with its probability; the
    parameters are drawn uniformly.
    Phase and spectral colour of real rooms are ignored: a training augmentation, tested against real
    convolution reverb and real noise by ``benchmarks/reference_robustness.py``.

        >>> room_and_noise(torch.full((128, 100), -30.0), torch.Generator().manual_seed(0)).shape
        torch.Size([128, 100])
    """
    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    floor = float(mel.min())
    power = torch.pow(10.0, mel.double() / 10.0)  # (n_mels, frames)
    if float(torch.rand((), generator=generator)) < reverb_probability:
        seconds = uniform(*rt60)
        n_taps = max(2, min(mel.shape[-1], math.ceil(seconds / MEL_HOP_SECONDS)))
        t = torch.arange(1, n_taps, dtype=power.dtype) * MEL_HOP_SECONDS  # (n_taps - 1,) delays in seconds
        decay = torch.pow(10.0, -6.0 * t / seconds)  # -60 dB at RT60, in power
        decay = decay / decay.sum() * 10.0 ** (uniform(*tail_db) / 10.0)
        # causal convolution along time: pad the past with zeros, flip the kernel for conv1d's correlation
        padded = torch.nn.functional.pad(power[:, None, :], (n_taps - 1, 0))  # (n_mels, 1, frames + taps - 1)
        kernel = torch.cat([decay.flip(0), torch.zeros(1, dtype=power.dtype)])[None, None, :]  # (1, 1, taps)
        power = power + torch.nn.functional.conv1d(padded, kernel)[:, 0, :]
    if float(torch.rand((), generator=generator)) < noise_probability:
        power = power + power.mean() * 10.0 ** (-uniform(*snr_db) / 10.0)
    return (10.0 * torch.log10(power)).clamp_min(floor).to(mel.dtype)


@functools.lru_cache(maxsize=None)
def _band_centres(n_mels: int, sample_rate: int) -> torch.Tensor:
    """``(n_mels,)`` centre frequencies in Hz of the bands of ``audio.mel`` (Slaney mel, 0 Hz to Nyquist)."""
    import librosa  # the audio stack, only when a mel is augmented

    return torch.from_numpy(librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=sample_rate / 2)[1:-1].copy())


@functools.lru_cache(maxsize=None)
def _harmonic_taps(n_mels: int, harmonic: int, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where band ``i``'s ``harmonic``-th overtone comes from: band ``i`` (centre ``f_i``) receives the power
    of frequency ``f_i / harmonic``, linearly interpolated between the two bands around it.

    Returns ``(low, high, weight)``, each ``(n_mels,)``: ``power[low] * (1 - weight) + power[high] * weight``;
    ``weight`` is ``-1`` for bands whose source lies below the lowest band (they receive nothing).
    """
    centres = _band_centres(n_mels, sample_rate)
    source = centres / harmonic  # (n_mels,) the frequency each band's overtone is the harmonic of
    high = torch.searchsorted(centres, source).clamp(1, n_mels - 1)  # (n_mels,) first centre >= source
    low = high - 1
    weight = ((source - centres[low]) / (centres[high] - centres[low])).clamp(0.0, 1.0)
    weight[source < centres[0]] = -1.0
    return low, high, weight.to(torch.float64)


def overtones_and_colour(mel: torch.Tensor, generator: torch.Generator | None = None, *,
                         overtone_probability: float = 0.5, colour_probability: float = 0.5,
                         fundamental: tuple[float, float] = (0.05, 1.0), harmonics: tuple[int, ...] = (2, 3, 4),
                         tilt_db: tuple[float, float] = (-9.0, 9.0), low_pass_hz: tuple[float, float] = (2500.0, 9000.0),
                         sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """A log-mel ``(n_mels, frames)`` in dB as if played by an instrument with other overtones, and heard
    through another microphone, EQ or file.

    Overtones (with ``overtone_probability``): an organ's 4' and 2 2/3' stops sound every note again an
    octave and a twelfth higher, and many instruments put more power on their 2nd-4th harmonics than on
    the fundamental (the shipped church organ: 8% on the fundamental, 52% / 35% on the 2nd / 4th). In
    power, ``power * a_1 + sum_k a_k * power(f / k)`` for ``k`` in ``harmonics``: each band also receives
    the power found at ``1/k`` of its frequency, with ``a_1`` drawn from ``fundamental`` and each ``a_k``
    from ``[0, 1]``, then scaled so the clip keeps its total power. Colour (with ``colour_probability``):
    a tilt of ``tilt_db`` from the lowest band to the highest (linear in the band's pitch), and half of
    the time a low-pass (a 4th-order roll-off, -24 dB an octave, above a cutoff drawn from
    ``low_pass_hz``): bass-cut or treble-cut EQ, a dull microphone, an 8 kHz or MP3 file. Parameters are
    drawn uniformly from ``generator``; as :func:`room_and_noise`, a training augmentation tested against
    real renders and filters by ``benchmarks/reference_robustness.py``.

        >>> overtones_and_colour(torch.full((128, 100), -30.0), torch.Generator().manual_seed(0)).shape
        torch.Size([128, 100])
    """
    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    n_mels = mel.shape[-2]
    floor = float(mel.min())
    power = torch.pow(10.0, mel.double() / 10.0)  # (n_mels, frames)
    if float(torch.rand((), generator=generator)) < overtone_probability:
        mixed = power * uniform(*fundamental)
        for k in harmonics:
            low, high, weight = _harmonic_taps(n_mels, k, sample_rate)
            shifted = power[low] * (1 - weight[:, None]) + power[high] * weight[:, None]  # (n_mels, frames)
            shifted[weight < 0] = 0.0
            mixed = mixed + uniform(0.0, 1.0) * shifted
        power = mixed * (power.sum() / mixed.sum().clamp_min(1e-30))
    if float(torch.rand((), generator=generator)) < colour_probability:
        centres = _band_centres(n_mels, sample_rate)
        gain_db = torch.linspace(0.0, 1.0, n_mels, dtype=power.dtype) * uniform(*tilt_db)  # (n_mels,)
        if float(torch.rand((), generator=generator)) < 0.5:
            cutoff = uniform(*low_pass_hz)
            gain_db = gain_db - 10.0 * torch.log10(1.0 + (centres / cutoff) ** 8)  # |H|^2 of a 4th-order roll-off
        power = power * torch.pow(10.0, gain_db / 10.0)[:, None]
    return (10.0 * torch.log10(power.clamp_min(1e-30))).clamp_min(floor).to(mel.dtype)
