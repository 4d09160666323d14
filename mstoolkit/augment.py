"""Reference augmentation: what a real recording does to a StyleBench reference, so the style encoder
learns the style from rhythm, texture and articulation instead of from one soundfont's instruments.

In StyleBench every style is played by its own fixed General-MIDI programs, so a style encoder trained
on it can name the style from the timbre alone; with a clarinet or an organ as the reference it fails
(``benchmarks/results/reference_robustness.md``: recognised 0.31-0.33). Two augmentations fix the
training side of that:

* :func:`with_timbre` re-instruments a reference with programs drawn from :data:`TIMBRE_POOL` (rendered
  by the soundfont and cached like any reference mel, see ``StyleBench.mel(..., timbre=k)``);
* :func:`room_and_noise` adds, in the log-mel domain, a reverberant tail and a noise floor at random
  levels: cheap enough for every training item, no audio needed.

The programs the robustness benchmark uses as "instruments never heard in training"
(:data:`HELD_OUT_PROGRAMS`) are kept out of the pool, so that table stays a test of generalisation.

    >>> piece = with_timbre(piece, seed=3)  # doctest: +SKIP
    >>> mel = room_and_noise(torch.from_numpy(bench.mel(window, "swing")))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import random

import torch

from mstoolkit.config import MEL_HOP_SECONDS
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
