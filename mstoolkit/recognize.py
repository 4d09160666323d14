"""Recognising a style reference: which known style does a model's own style encoder hear in it?

    >>> recognizer = StyleRecognizer.from_model(model)        # doctest: +SKIP
    >>> print(recognizer.recognize("my_recording.mp3"))       # doctest: +SKIP
    swing 1.00, straight 0.00, staccato 0.00
    >>> print(recognizer.recognize("data_samples/audio/speech_gettysburg.ogg"))   # doctest: +SKIP
    matches no known style: unlike every known style (distance 13.2 > 10.4) (closest: stride)

A reference is whatever :func:`mstoolkit.generate.reference_mel` takes (a Piece, a ``.mid`` path, an
audio file in any format librosa/soundfile read, mono audio at 22050 Hz, a log-mel), turned into the very
mel a transfer would use, then into the model's style vector ``v = model.style_encoder(mel)``.

*Which style*: cosine similarity of ``v`` to each style's centroid (mean unit style vector of the shipped
samples rendered in that style), confidences ``softmax(scale * cosine)``. ``scale`` is fitted at build time
by minimising the negative log-likelihood of the true styles of held-out references, capped at 100
(``SCALE_RANGE``): for the demo model every held-out reference is right by a wide margin, so the fit
runs to the cap; confidence is then near 1 for a clear reference and spreads only where two
centroids are nearly as close (e.g. noisy swing vs shuffle).

*Is it a known style at all*: silence first (the loudest mel bin below ``SILENCE_DB`` = -60 dB; zeros give
-80, white noise at -90 dBFS gives -64), then noise (a spectrum as flat as white noise's:
``spectral_flatness`` above ``NOISE_FLATNESS``; an encoder trained on noisy references, see
``mstoolkit.augment``, can place white noise near a style, so this check does not rely on it), then
``distance``: the Mahalanobis distance of ``v`` to the nearest style mean, with the pooled within-style
covariance (shrunk halfway to a scaled identity) of the build references, each heard clean and through four
mild recording conditions (a 0.8 s room, noise at 30 dB SNR, a 5 kHz low-pass, 12 dB quieter). Above
``threshold`` the answer is "matches no known style". The threshold is the geometric midpoint between the
farthest held-out reference (windows never used for the means, in all five conditions) and the nearest
synthetic non-music (white, pink and brown noise at two levels); the shipped speech is left out of the
calibration, so the tests judge the threshold on audio it never saw.

Why a distance and not the best cosine: measured with the demo model (``benchmarks/reference_robustness.py``,
StyleBench test windows, 4 per style), the best cosine cannot separate music from non-music: speech
reaches 0.77 and white noise 0.75, while music played on an unused instrument falls to 0.32-0.75 and
music under 20 dB SNR noise to 0.55 (clean references: >= 0.97). In the distance the two sides separate:

=====================================================  ==========================================
references (demo model, build: 6 + 3 windows)           distance to the nearest style
=====================================================  ==========================================
held-out build references, clean / worst condition      max 4.4 / 7.3 (the room)
StyleBench test windows, clean                           median 2.5, max 4.6
... other instruments, tempo, files, rates, lengths      max 10.6 (church organ)
... reverb RT60 1.5 s, white noise at SNR 20 dB          max 10.9, 8.9
threshold (sqrt(7.3 * 14.9))                             10.4
synthetic noise (calibration) / white noise (bench)      min 14.9 / 13.4
speech (shipped; quieter, cropped, with noise, x3)       min 12.6
=====================================================  ==========================================

so music under every perturbation of the benchmark is accepted (>= 97 % per row) and speech, silence
and white noise are all rejected; the margins are thin (church organ 10.6 and one reverb reference
10.9 against the threshold 10.4; speech 12.6). Accepted is not recognised: the demo's encoder hears
timbre more than rhythm, so on an instrument no style uses it names the right style only about a
third of the time (see ``benchmarks/results/reference_robustness.md``).

*A second opinion* (``gate``): an encoder trained on augmented references (redrawn instruments, rooms and
noise, ``mstoolkit.augment``), as ``demo_v2``'s, hears more music as its styles and also widens each
style until the shipped speech lies inside (``demo_v2``: 0 of 6 speech clips refused on its own).
``from_model(model, gate=MUSIC_GATE)`` also asks the demo's recognizer, whose encoder heard clean renders
only, and refuses what it calls unlike every known style; the style named is still the model's own.
The CLI, the widgets and ``benchmarks/reference_robustness.py`` do so.

The build renders (windows + held_out) x 9 styles references (about 20-40 s on a laptop CPU) and is
cached as JSON under ``mstoolkit.data.cache_dir() / "recognizer"``, keyed by a hash of the encoder's
weights, the recipe and the code that renders the references.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mstoolkit.config import MEL_HOP_SECONDS, UserError

CACHE_VERSION = 1  # bump when the recipe below (windows, calibration rule) changes what a cache file holds
SILENCE_DB = -60.0  # a reference whose loudest mel bin is below this (dB, ref 1.0) is silence
# A reference whose mel spectrum is this flat (geometric / arithmetic mean of the band powers, median over
# its loud frames) is noise: white noise gives ~0.88, StyleBench renders 0.00-0.02, the same with white
# noise at 5 dB SNR at most 0.29, speech 0.01 (measured on the shipped samples, all nine styles).
NOISE_FLATNESS = 0.5
MIN_SECONDS = 1.0  # shorter references hold less than a bar: too little to hear a style in


@dataclass(frozen=True)
class Heard:
    """What the style encoder heard in one reference (:meth:`StyleRecognizer.recognize`).

    ``ranking``: every known style with its confidence (``softmax(scale * cosine)``), best first;
    ``similarities``: cosine similarity of the reference's style vector to each style's centroid;
    ``distance``: how far the style vector lies from the nearest style, in units of that style's spread
    (known styles' references lie within about 10); ``known``: False for silence and beyond the
    recognizer's threshold; ``reason``: why, in words; ``peak_db``: the loudest mel bin (dB, floor -80).

        >>> heard = Heard((("swing", 0.91), ("shuffle", 0.09)), {"swing": 0.98, "shuffle": 0.7}, 0.98, 4.2,
        ...               True, "distance 4.2 <= 20.0", -3.0)
        >>> str(heard), heard.style
        ('swing 0.91, shuffle 0.09', 'swing')
    """

    ranking: tuple[tuple[str, float], ...]
    similarities: dict[str, float]
    best_similarity: float
    distance: float
    known: bool
    reason: str
    peak_db: float

    @property
    def style(self) -> str | None:
        """The recognised style, or None when the reference matches no known style."""
        return self.ranking[0][0] if self.known else None

    @property
    def silent(self) -> bool:
        return self.peak_db < SILENCE_DB

    def top(self, n: int = 3) -> str:
        """The first ``n`` styles of the ranking as ``"swing 0.91, shuffle 0.06, straight 0.02"``."""
        return ", ".join(f"{style} {confidence:.2f}" for style, confidence in self.ranking[:n])

    def __str__(self) -> str:
        if self.known:
            return self.top()
        if self.silent:  # nothing was heard: a ranking would be noise
            return f"matches no known style: {self.reason}"
        # no confidences here: a softmax over styles it matches none of would read as certainty
        return f"matches no known style: {self.reason} (closest: {self.ranking[0][0]})"


def spectral_flatness(spec: np.ndarray) -> float:
    """How noise-like a log-mel ``(n_mels, frames)`` in dB is: per frame the geometric over the arithmetic
    mean of the band powers (1 for a flat spectrum, near 0 for tones), the median over the frames within
    40 dB of the loudest (so the silence around music does not count).

        >>> round(spectral_flatness(np.full((128, 10), -20.0)), 3)
        1.0
    """
    power = 10.0 ** (spec.astype(np.float64) / 10.0)  # (n_mels, frames)
    loud = spec.max(0) > spec.max() - 40.0  # (frames,)
    flatness = np.exp(np.log(power).mean(0)) / power.mean(0)  # (frames,)
    return float(np.median(flatness[loud]))


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (cosine similarity is then a dot product)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def encoder_fingerprint(encoder: torch.nn.Module) -> str:
    """A hash of a style encoder's weights (names, shapes, dtypes and bytes): the recognizer cache key.

        >>> from mstoolkit.model import StyleEncoder
        >>> len(encoder_fingerprint(StyleEncoder(n_mels=128, d_style=32)))
        16
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _style_encoder(model: Any) -> torch.nn.Module:
    """The style encoder of a MusicStyleTransformer (or a StyleEncoder given as is)."""
    encoder = getattr(model, "style_encoder", model)
    if not (isinstance(encoder, torch.nn.Module) and hasattr(encoder, "embed") and hasattr(encoder, "n_mels")):
        raise UserError(f"StyleRecognizer: model must be a MusicStyleTransformer or a StyleEncoder, "
                        f"got {type(model).__name__}")
    return encoder


def _recordings(wave: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``wave`` (rendered, 22050 Hz, peak 1) as a few mild recording conditions would change it: what
    the acceptance test should treat as the same music. Deliberately milder than, and different from,
    the perturbations of ``benchmarks/reference_robustness.py``, which then measures how far it carries.
    Each is ``(samples,)`` float32."""
    import scipy.signal

    from mstoolkit.audio import SAMPLE_RATE

    power = float(np.mean(wave.astype(np.float64) ** 2))
    t = np.arange(int(0.8 * SAMPLE_RATE)) / SAMPLE_RATE
    tail = rng.standard_normal(len(t)) * 10 ** (-3 * t / 0.8)  # a room: -60 dB after 0.8 s
    tail *= 10 ** (-3 / 20) / np.sqrt(np.sum(tail ** 2))  # tail energy 3 dB below the direct sound
    room = scipy.signal.fftconvolve(wave, np.concatenate([[1.0], tail]))[: len(wave)]
    muffled = scipy.signal.sosfiltfilt(scipy.signal.butter(4, 5000, fs=SAMPLE_RATE, output="sos"), wave)
    out = {
        "clean": wave,
        "room (RT60 0.8 s)": room,
        "noise (SNR 30 dB)": wave + rng.standard_normal(len(wave)) * math.sqrt(power / 1e3),
        "low-pass 5 kHz": muffled,
    }
    out = {name: x / np.max(np.abs(x)) for name, x in out.items()}  # peak 1, as audio.render makes it
    out["level -12 dB"] = wave * 10 ** (-12 / 20)
    return {name: x.astype(np.float32) for name, x in out.items()}


def _noise(kind: str, seconds: float, rng: np.random.Generator, peak: float = 1.0) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2) noise, ``seconds`` long at 22050 Hz, scaled to ``peak``."""
    from mstoolkit.audio import SAMPLE_RATE

    n = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))  # (n // 2 + 1,) complex
    f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)  # (n // 2 + 1,) Hz, flat below 20 Hz
    spectrum *= {"white": 1.0, "pink": f ** -0.5, "brown": f ** -1.0}[kind]
    wave = np.fft.irfft(spectrum, n)
    return (peak * wave / np.max(np.abs(wave))).astype(np.float32)


def _choose_threshold(positives: np.ndarray, negatives: np.ndarray) -> float:
    """The distance above which a reference matches no known style: the geometric midpoint of the gap
    between the farthest held-out music (``positives``) and the nearest non-music (``negatives``); when
    the two overlap, the farthest held-out music itself (accepting known styles comes first)."""
    far, near = float(positives.max()), float(negatives.min())
    return math.sqrt(far * near) if near > far else far


def _fit_scale(similarities: np.ndarray, labels: np.ndarray) -> float:
    """The softmax scale (inverse temperature) that minimises the negative log-likelihood of the true
    styles: ``similarities (N, S)`` cosines, ``labels (N,)`` style indices; searched on a log grid in
    ``SCALE_RANGE`` (the cap keeps a held-out set without mistakes from driving it to infinity)."""
    grid = np.geomspace(SCALE_RANGE[0], SCALE_RANGE[1], 241)  # (G,)
    logits = grid[:, None, None] * similarities[None]  # (G, N, S)
    top = logits.max(-1)  # (G, N)
    log_z = np.log(np.exp(logits - top[..., None]).sum(-1)) + top  # (G, N)
    nll = (log_z - logits[:, np.arange(len(labels)), labels]).mean(-1)  # (G,)
    return float(grid[int(np.argmin(nll))])


SCALE_RANGE = (1.0, 100.0)
# The checkpoint whose recognizer is the second "is it music in a known style?" opinion for every other
# model (StyleRecognizer.from_model(gate=...); the CLI, the widgets and the robustness benchmark use it): an
# encoder trained on augmented references (mstoolkit.augment) widens its styles until speech falls inside
# them, the demo's (clean renders only) keeps them tight (benchmarks/results/reference_robustness.md).
MUSIC_GATE = "demo"
SHRINK = 0.5  # covariance shrinkage toward a scaled identity: 45-135 vectors estimate a d_style x d_style matrix


@dataclass
class StyleRecognizer:
    """Which known style a model's style encoder hears in a reference, and whether it hears music at all.

    Two numbers per reference, from its style vector ``v`` (the model's ``style_encoder``):

    - *which style*: cosine similarity of ``v`` to each style's centroid (the mean unit style vector of
      that style's references), turned into confidences by ``softmax(scale * cosine)``;
    - *is it one of them*: ``distance``, the Mahalanobis distance of ``v`` to the nearest style mean,
      in units of how much references of one style spread (pooled within-style covariance, shrunk
      toward the identity by ``SHRINK``). Beyond ``threshold`` the reference matches no known style.

        >>> recognizer = StyleRecognizer.from_model(model)     # doctest: +SKIP
        >>> recognizer.recognize(style_reference("waltz")).style   # doctest: +SKIP
        'waltz'
    """

    encoder: torch.nn.Module  # the model's StyleEncoder: mel (B, n_mels, frames) -> (B, d_style)
    styles: tuple[str, ...]
    centroids: np.ndarray  # (S, D) float64 unit rows: the mean unit style vector of each style (cosine)
    means: np.ndarray  # (S, D) float64: the mean style vector of each style (distance)
    precision: np.ndarray  # (D, D) float64: inverse of the shrunk pooled within-style covariance
    threshold: float  # distance above this: "matches no known style"
    scale: float  # confidence = softmax(scale * cosine)
    calibration: dict = field(default_factory=dict)  # the evidence behind threshold and scale (JSON-ready)
    path: Path | None = None  # the cache file it was read from or written to
    gate: "StyleRecognizer | None" = None  # another encoder's recognizer that must also call it a known style
    gate_name: str = ""  # what the gate is, for the reason a reference is refused ("demo")

    # ------------------------------------------------------------------ building
    @classmethod
    def from_model(cls, model: Any, *, windows: int = 6, held_out: int = 3, bars: int = 4, seed: int = 0,
                   cache_dir: str | os.PathLike | None = None, progress: bool = True,
                   rebuild: bool = False, gate: Any = None) -> "StyleRecognizer":
        """The recognizer of ``model``'s style encoder (a MusicStyleTransformer or its StyleEncoder).

        References are made as the library makes them (:func:`mstoolkit.data.style_reference`): the
        ``bars``-bar windows :func:`mstoolkit.data.reference_windows` picks from the shipped samples,
        rendered in every style with ``seed`` and synthesized (:func:`mstoolkit.audio.render`), each
        also heard through a few mild recording conditions (a room, noise, a low-pass, a lower level).
        The first ``windows`` windows make the centroids, means and spread; the next ``held_out``
        (never in those) calibrate the threshold and the scale. The result is cached as JSON under
        ``cache_dir()/recognizer/``, keyed by a hash of the encoder's weights and of this recipe, so the
        second call for the same model reads one small file (``rebuild=True`` builds it again).

        ``gate``: a second model (or a checkpoint name or folder, e.g. :data:`MUSIC_GATE`) whose own
        recognizer must also accept a reference before it counts as a known style; the style named is
        still this model's. Ignored when it has the same encoder weights as ``model``.

            >>> recognizer = StyleRecognizer.from_model(model, progress=False)   # doctest: +SKIP
            >>> gated = StyleRecognizer.from_model(model, gate=MUSIC_GATE)   # doctest: +SKIP
        """
        from mstoolkit.data import _code_fingerprint, _write_atomic, cache_dir as cache_root
        from mstoolkit.styles import list_styles

        encoder = _style_encoder(model)
        for name, value in (("windows", windows), ("held_out", held_out), ("bars", bars)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"StyleRecognizer.from_model: {name} must be an integer >= 1, got {value!r}")
        styles = tuple(list_styles())
        recipe = {"cache_version": CACHE_VERSION, "encoder": encoder_fingerprint(encoder), "styles": styles,
                  "windows": windows, "held_out": held_out, "bars": bars, "seed": seed, "shrink": SHRINK,
                  # the references depend on the style rules and the synthesizer: a change there rebuilds
                  "code": [_code_fingerprint(m) for m in ("mstoolkit.styles", "mstoolkit.audio", __name__)]}
        key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]
        path = cache_root(cache_dir) / "recognizer" / f"{key}.json"
        recognizer = None
        if path.is_file() and not rebuild:
            try:
                recognizer = cls._load(encoder, path)
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a damaged or foreign cache file: build again below and replace it
        if recognizer is None:
            recognizer = cls._build(encoder, styles, windows, held_out, bars, seed, progress)
            recognizer.calibration["recipe"] = recipe
            recognizer.path = path
            data = {"styles": list(recognizer.styles), "centroids": recognizer.centroids.tolist(),
                    "means": recognizer.means.tolist(), "precision": recognizer.precision.tolist(),
                    "threshold": recognizer.threshold, "scale": recognizer.scale, "calibration": recognizer.calibration}
            _write_atomic(path, json.dumps(data).encode())  # a temporary file renamed into place: never half a file
        if gate is not None:
            name = os.fspath(gate) if isinstance(gate, (str, os.PathLike)) else "gate"
            if isinstance(gate, (str, os.PathLike)):
                from mstoolkit.checkpoint import load_pretrained

                gate = load_pretrained(gate)
            gate_encoder = _style_encoder(gate)
            if encoder_fingerprint(gate_encoder) != recipe["encoder"]:
                recognizer.gate = cls.from_model(gate_encoder, windows=windows, held_out=held_out, bars=bars,
                                                 seed=seed, cache_dir=cache_dir, progress=progress, rebuild=rebuild)
                recognizer.gate_name = name
        return recognizer

    @classmethod
    def _load(cls, encoder: torch.nn.Module, path: Path) -> "StyleRecognizer":
        data = json.loads(path.read_text())
        centroids, means, precision = (np.asarray(data[k], dtype=np.float64)
                                       for k in ("centroids", "means", "precision"))
        n, d = len(data["styles"]), encoder.proj.out_features
        if centroids.shape != (n, d) or means.shape != (n, d) or precision.shape != (d, d):
            raise ValueError(f"{path}: arrays of shapes {centroids.shape}, {precision.shape} do not fit this encoder")
        return cls(encoder, tuple(data["styles"]), centroids, means, precision, float(data["threshold"]),
                   float(data["scale"]), data["calibration"], path)

    @classmethod
    def _build(cls, encoder: torch.nn.Module, styles: tuple[str, ...], windows: int, held_out: int, bars: int,
               seed: int, progress: bool) -> "StyleRecognizer":
        from tqdm.auto import tqdm

        from mstoolkit import audio
        from mstoolkit.data import reference_windows
        from mstoolkit.piece import load_piece, sample_paths
        from mstoolkit.styles import render_style

        chosen = reference_windows(windows + held_out, bars)
        if len(chosen) < windows + held_out:
            raise UserError(f"StyleRecognizer.from_model: the shipped samples hold {len(chosen)} windows of "
                            f"{bars} bars, fewer than windows + held_out = {windows + held_out}")
        paths = sample_paths()
        pieces = {name: load_piece(paths[name]) for name in {name for name, _ in chosen}}
        rng = np.random.default_rng(seed)
        rows = []  # (window index, style index, condition, style vector (D,))
        jobs = [(i, w, s) for i, w in enumerate(chosen) for s in range(len(styles))]
        for i, (name, first), s in tqdm(jobs, desc="style recognizer: rendering references", unit="ref",
                                        disable=not progress):
            wave = audio.render(render_style(pieces[name].slice_bars(first, bars), styles[s], seed=seed))
            for condition, heard in _recordings(wave, rng).items():
                rows.append((i, s, condition, encoder.embed(audio.mel(heard)).double().cpu().numpy()))
        window = np.array([r[0] for r in rows])
        label = np.array([r[1] for r in rows])
        clean = np.array([r[2] == "clean" for r in rows])
        vectors = np.stack([r[3] for r in rows])  # (N, D)
        fit, held = window < windows, window >= windows

        n_styles = len(styles)
        centroids = _unit(np.stack([_unit(vectors[fit & clean & (label == s)]).mean(0) for s in range(n_styles)]))
        means = np.stack([vectors[fit & (label == s)].mean(0) for s in range(n_styles)])  # (S, D)
        residuals = vectors[fit] - means[label[fit]]  # (F, D)
        covariance = residuals.T @ residuals / max(len(residuals) - n_styles, 1)  # (D, D) pooled within-style
        d = covariance.shape[0]
        covariance = (1 - SHRINK) * covariance + SHRINK * np.trace(covariance) / d * np.eye(d)
        precision = np.linalg.inv(covariance)
        recognizer = cls(encoder, styles, centroids, means, precision, 0.0, 1.0)

        cosines = _unit(vectors[held]) @ centroids.T  # (H, S)
        distances = recognizer._distances(vectors[held]).min(1)  # (H,)
        # what must be rejected: synthetic noise of three colours at two levels. The shipped speech stays
        # out of the calibration, so the tests judge the threshold on something it never saw.
        negatives = {f"{kind} noise, peak {peak:g}": _noise(kind, 8.0, rng, peak)
                     for kind in ("white", "pink", "brown") for peak in (1.0, 0.1)}
        negative = {name: float(recognizer._distances(encoder.embed(audio.mel(w)).double().cpu().numpy()[None]).min())
                    for name, w in negatives.items()}
        recognizer.threshold = _choose_threshold(distances, np.array(list(negative.values())))
        recognizer.scale = _fit_scale(cosines, label[held])
        conditions = list(dict.fromkeys(r[2] for r in rows))
        held_condition = np.array([r[2] for r in rows])[held]
        recognizer.calibration = {
            "fit_windows": [list(w) for w in chosen[:windows]],
            "held_out_windows": [list(w) for w in chosen[windows:]],
            "held_out": {c: {"accuracy": float(np.mean(cosines[held_condition == c].argmax(1)
                                                       == label[held][held_condition == c])),
                             "max_distance": float(distances[held_condition == c].max()),
                             "min_best_cosine": float(cosines[held_condition == c].max(1).min())}
                         for c in conditions},
            "negatives_distance": negative,
        }
        return recognizer

    # ------------------------------------------------------------------ recognising
    def _distances(self, vectors: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of style vectors ``(N, D)`` to every style mean: ``(N, S)``."""
        diff = vectors[:, None, :] - self.means[None]  # (N, S, D)
        return np.sqrt(np.maximum(np.einsum("nsd,de,nse->ns", diff, self.precision, diff), 0.0))

    def mel(self, reference: Any) -> np.ndarray:
        """The log-mel ``(n_mels, frames)`` the model hears for ``reference``, made exactly as
        :func:`mstoolkit.generate.reference_mel` makes it for a transfer; UserError for unusable input.

            >>> recognizer.mel("take.flac").shape   # doctest: +SKIP
            (128, 431)
        """
        from mstoolkit.generate import reference_mel

        if reference is None or isinstance(reference, (bool, int, float, dict)):
            raise UserError(f"reference: expected a Piece, a .mid or audio file path, mono audio or a mel, "
                            f"got {type(reference).__name__}")
        is_path = isinstance(reference, (str, os.PathLike))
        where = f"reference {os.fspath(reference)!r}" if is_path else "reference"
        if is_path and not os.path.isfile(reference):
            raise UserError(f"{where}: no such file")
        try:
            spec = reference_mel(reference, n_mels=self.encoder.n_mels)
        except UserError:
            raise
        except (ValueError, TypeError, OSError) as err:  # a bad MIDI file, NaN samples, an empty array, ...
            raise UserError(f"{where}: {err}") from err
        spec = np.asarray(spec, dtype=np.float32)  # (n_mels, frames)
        if not np.all(np.isfinite(spec)):
            raise UserError(f"{where}: the mel spectrogram holds NaN or infinite values")
        seconds = spec.shape[1] * MEL_HOP_SECONDS
        if seconds < MIN_SECONDS:
            raise UserError(f"{where}: {seconds:.2f} s is too short to hear a style in; give at least "
                            f"{MIN_SECONDS:g} s (a bar or more)")
        return spec

    def recognize(self, reference: Any) -> Heard:
        """What the style encoder hears in ``reference``: a Piece, a ``.mid`` or audio file path
        (WAV, FLAC, OGG, MP3, ...), mono audio at 22050 Hz, or a log-mel ``(n_mels, frames)``.

            >>> print(recognizer.recognize("data_samples/audio/speech_gettysburg.ogg"))   # doctest: +SKIP
            matches no known style: unlike every known style (distance 13.2 > 10.4) (closest: stride)
        """
        spec = self.mel(reference)  # (n_mels, frames)
        vector = self.encoder.embed(spec).double().cpu().numpy()  # (D,)
        cosines = _unit(vector) @ self.centroids.T  # (S,)
        confidence = _softmax(self.scale * cosines)  # (S,)
        order = np.argsort(-confidence, kind="stable")
        distance = float(self._distances(vector[None]).min())
        peak_db = float(spec.max())
        flatness = spectral_flatness(spec) if peak_db >= SILENCE_DB else 0.0
        if peak_db < SILENCE_DB:
            known, reason = False, f"silence (peak {peak_db:.0f} dB)"
        elif flatness > NOISE_FLATNESS:
            known, reason = False, f"noise (spectral flatness {flatness:.2f} > {NOISE_FLATNESS:g})"
        elif distance > self.threshold:
            known, reason = False, f"unlike every known style (distance {distance:.1f} > {self.threshold:.1f})"
        else:
            known, reason = True, f"distance {distance:.1f} <= {self.threshold:.1f}"
            second = self.gate.recognize(spec) if self.gate is not None else None
            if second is not None and not second.known:  # the gate's silence and noise checks are this one's
                known, reason = False, f"{second.reason} to the {self.gate_name} model's style encoder"
        return Heard(ranking=tuple((self.styles[i], float(confidence[i])) for i in order),
                     similarities={self.styles[i]: float(cosines[i]) for i in range(len(self.styles))},
                     best_similarity=float(cosines.max()), distance=distance, known=known, reason=reason,
                     peak_db=peak_db)
