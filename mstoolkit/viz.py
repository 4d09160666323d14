"""Figures: arrays (and `Piece`s) in, `plotly.graph_objects.Figure` out. Pure functions, no widgets.

    >>> fig = piano_roll(piece)          # doctest: +SKIP
    >>> fig.show()                       # doctest: +SKIP

Every function checks its input shapes and raises ``ValueError`` naming the argument, so a wrong
tensor gives a readable message instead of an empty plot. Plotly is imported here only: the rest of
the library does not need it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mstoolkit.piece import TICKS_PER_QUARTER, Piece

# One colour per token type / program family; a qualitative palette readable on a projector.
PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2",
           "#FF9DA6", "#9D755D", "#BAB0AC"]
NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def pitch_name(pitch: int) -> str:
    """MIDI pitch -> scientific name, e.g. ``pitch_name(60) == "C4"``."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _as_2d(name: str, array) -> np.ndarray:
    arr = np.asarray(array.detach().cpu() if hasattr(array, "detach") else array, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {arr.shape}")
    return arr


def _layout(fig: go.Figure, title: str | None, height: int) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=60, r=20, t=50 if title else 20, b=40),
                      template="plotly_white")
    return fig


# ----------------------------------------------------------------------------- piano roll
def _note_traces(piece: Piece, color_by: str) -> list[go.Scatter]:
    """One line trace per group (program, or one for all when colouring by velocity).

    Each note is a thick horizontal segment from start to end beats; segments of one group are joined
    with ``None`` gaps so thousands of notes cost one trace (fast in the browser).
    """
    groups: dict[str, list] = {}
    for n in piece.notes:
        key = "drums" if n.is_drum else f"program {n.program}"
        groups.setdefault(key, []).append(n)
    traces = []
    for i, (label, notes) in enumerate(sorted(groups.items())):
        xs, ys, text = [], [], []
        for n in notes:
            start, end = n.start / TICKS_PER_QUARTER, n.end / TICKS_PER_QUARTER
            hover = (f"{pitch_name(n.pitch)} ({n.pitch})<br>beat {start:g}, {n.duration} ticks"
                     f"<br>velocity {n.velocity}<br>{label}")
            xs += [start, end, None]
            ys += [n.pitch, n.pitch, None]
            text += [hover, hover, None]
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", name=label, text=text, hoverinfo="text",
                                 line=dict(width=7, color=PALETTE[i % len(PALETTE)])))
    return traces


def piano_roll(piece: Piece, title: str | None = None, height: int = 320) -> go.Figure:
    """Notes as bars (x: beats, y: pitch), one colour per program, bar lines dotted."""
    if not isinstance(piece, Piece):
        raise ValueError(f"piece must be a mstoolkit Piece, got {type(piece).__name__}")
    fig = go.Figure(_note_traces(piece, "program"))
    for tick in piece.bar_starts():
        fig.add_vline(x=tick / TICKS_PER_QUARTER, line=dict(color="#ccc", width=1, dash="dot"))
    fig.update_xaxes(title="beat (quarter notes)")
    fig.update_yaxes(title="pitch")
    return _layout(fig, title or piece.name or None, height)


# ----------------------------------------------------------------------------- tokens
def token_strip(tokens: Sequence[str], types: Sequence[str], title: str | None = None,
                per_row: int = 32) -> go.Figure:
    """Token names as coloured cells, one colour per token type; hover shows the name and index."""
    if len(tokens) != len(types):
        raise ValueError(f"tokens ({len(tokens)}) and types ({len(types)}) must have the same length")
    if not tokens:
        raise ValueError("tokens is empty: nothing to draw")
    kinds = list(dict.fromkeys(types))  # stable order of first appearance
    n_rows = (len(tokens) + per_row - 1) // per_row
    z = np.full((n_rows, per_row), np.nan)
    text = np.full((n_rows, per_row), "", dtype=object)
    for i, (tok, kind) in enumerate(zip(tokens, types)):
        r, c = divmod(i, per_row)
        z[r, c] = kinds.index(kind)
        text[r, c] = f"#{i} {tok}"
    colorscale = [[k / max(len(kinds) - 1, 1), PALETTE[k % len(PALETTE)]] for k in range(len(kinds))]
    if len(kinds) == 1:
        colorscale = [[0, PALETTE[0]], [1, PALETTE[0]]]
    cell_label = np.vectorize(lambda s: s.split(" ", 1)[-1].split("_")[-1] if s else "")(text)
    # Empty cells are None, not NaN (NaN is not JSON, so a FigureWidget could not send it); heatmap text
    # templates know %{text}, not %{customdata}: the labels go in `text`, the hover texts in `hovertext`.
    cells = np.where(np.isnan(z), None, z).tolist()
    fig = go.Figure(go.Heatmap(z=cells, text=cell_label, hovertext=text, hoverinfo="text", texttemplate="%{text}",
                               colorscale=colorscale, showscale=False, xgap=2, ygap=2))
    # Legend: one invisible marker per token type so the colours are explained.
    for k, kind in enumerate(kinds):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=kind,
                                 marker=dict(size=12, color=PALETTE[k % len(PALETTE)], symbol="square")))
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    return _layout(fig, title, 60 + 28 * n_rows + 40)


# ----------------------------------------------------------------------------- audio
def mel_figure(mel, sample_rate: int = 22050, hop_length: int = 512, title: str | None = None) -> go.Figure:
    """A log-mel spectrogram ``(n_mels, frames)`` in dB as a heatmap (x: seconds, y: mel band)."""
    mel = _as_2d("mel", mel)
    seconds = np.arange(mel.shape[1]) * hop_length / sample_rate
    fig = go.Figure(go.Heatmap(z=mel, x=seconds, colorscale="Magma", colorbar=dict(title="dB")))
    fig.update_xaxes(title="seconds")
    fig.update_yaxes(title="mel band")
    return _layout(fig, title, 280)


# ----------------------------------------------------------------------------- attention
def attention_heatmap(weights, query_labels: Sequence[str] | None = None,
                      key_labels: Sequence[str] | None = None, title: str | None = None,
                      query_start: int = 0, key_start: int = 0) -> go.Figure:
    """One attention map ``(T_q, T_k)`` (rows: queries, columns: keys), labelled with token names.

    ``query_start`` / ``key_start``: index of the first row / column in the whole sequence, so a
    window cut from a long map keeps the tokens' real positions in its labels (``"120:Pitch_60"``).

        >>> attention_heatmap(maps.encoder[0][0, 0], names, names, title="encoder layer 1, head 1")  # doctest: +SKIP
    """
    weights = _as_2d("weights", weights)
    t_q, t_k = weights.shape
    if query_labels is not None and len(query_labels) != t_q:
        raise ValueError(f"query_labels has {len(query_labels)} entries for {t_q} query rows")
    if key_labels is not None and len(key_labels) != t_k:
        raise ValueError(f"key_labels has {len(key_labels)} entries for {t_k} key columns")
    # Index-prefixed labels: token names repeat ("Bar", "Position_0"), plotly would merge them.
    ql = [f"{query_start + i}:{s}" for i, s in enumerate(query_labels)] if query_labels is not None else None
    kl = [f"{key_start + i}:{s}" for i, s in enumerate(key_labels)] if key_labels is not None else None
    fig = go.Figure(go.Heatmap(z=weights, x=kl, y=ql, colorscale="Viridis", zmin=0,
                               colorbar=dict(title="weight"),
                               hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="query")
    fig.update_xaxes(title="key")
    return _layout(fig, title, max(320, min(900, 14 * t_q + 120)))


def note_attention(weights, query_notes: Sequence[Sequence[int]], key_notes: Sequence[Sequence[int]]) -> np.ndarray:
    """Token-level attention ``(T_q, T_k)`` -> note-level ``(N_q, N_k)`` for :func:`attention_arcs`.

    ``query_notes[i]`` / ``key_notes[j]``: the token indices of note i / j (e.g. its Program, Pitch,
    Velocity and Duration tokens). Entry ``(i, j)`` is the attention mass that note i's tokens give
    to note j's tokens: summed over j's tokens, averaged over i's (each row sums to at most 1, the
    rest goes to tokens of no note: Bar, Position, ...).

        >>> note_attention(np.full((4, 4), 0.25), [[0, 1]], [[0], [2, 3]])
        array([[0.25, 0.5 ]])
    """
    weights = _as_2d("weights", weights)
    t_q, t_k = weights.shape
    for name, groups, size in (("query_notes", query_notes, t_q), ("key_notes", key_notes, t_k)):
        bad = [list(g) for g in groups if len(g) == 0 or min(g) < 0 or max(g) >= size]
        if bad:
            raise ValueError(f"{name}: token groups {bad[:3]} are empty or outside 0..{size - 1}")
    rows = np.stack([weights[list(g)].mean(axis=0) for g in query_notes]) if len(query_notes) else \
        np.zeros((0, t_k))  # (N_q, T_k): mean over each query note's tokens
    member = np.zeros((t_k, len(key_notes)))  # (T_k, N_k): 1 where key token t belongs to note j
    for j, g in enumerate(key_notes):
        member[list(g), j] = 1.0
    return rows @ member  # (N_q, N_k)


def attention_arcs(piece: Piece, note_weights, query_note: int, top_k: int = 12,
                   title: str | None = None, key_piece: Piece | None = None) -> go.Figure:
    """Arcs on the piano roll from one note to the notes it attends to (Music Transformer style).

    ``note_weights`` is ``(N_notes, N_keys)``: row i holds how much note i attends to each key note
    (e.g. :func:`note_attention` of a token-level map). The keys are the notes of ``piece`` itself
    (self-attention, ``N_keys = N_notes``) or, for cross-attention, those of ``key_piece``, which is
    drawn faded under ``piece`` on the same beat axis. The ``top_k`` strongest keys are drawn as arcs
    whose width and opacity follow the weight.

        >>> attention_arcs(piece, note_attention(att, groups, groups), query_note=5, top_k=8)  # doctest: +SKIP
    """
    weights = _as_2d("note_weights", note_weights)
    n = len(piece.notes)
    keys = piece if key_piece is None else key_piece
    if key_piece is not None and not isinstance(key_piece, Piece):
        raise ValueError(f"key_piece must be a mstoolkit Piece, got {type(key_piece).__name__}")
    if weights.shape != (n, len(keys.notes)):
        raise ValueError(f"note_weights must be ({n}, {len(keys.notes)}) for {n} query notes and "
                         f"{len(keys.notes)} key notes, got {weights.shape}")
    if not 0 <= query_note < n:
        raise ValueError(f"query_note {query_note} is out of range for {n} notes")
    fig = piano_roll(piece, title=title, height=380)
    if key_piece is not None:  # key notes in grey, under the query piece's notes
        key_traces = _note_traces(key_piece, "program")
        for trace in key_traces:
            trace.update(name=f"keys: {trace.name}", opacity=0.35, line=dict(color="#888", width=5))
        fig.add_traces(key_traces)
        fig.data = fig.data[-len(key_traces):] + fig.data[:-len(key_traces)]
    notes = piece.notes
    row = weights[query_note]
    strongest = np.argsort(row)[::-1][:top_k]
    peak = max(float(row[strongest[0]]), 1e-9) if len(strongest) else 1.0
    q = notes[query_note]
    qx, qy = (q.start + q.duration / 2) / TICKS_PER_QUARTER, q.pitch
    for k in strongest:
        if row[k] <= 0:
            continue
        key = keys.notes[k]
        kx, ky = (key.start + key.duration / 2) / TICKS_PER_QUARTER, key.pitch
        # A quadratic Bezier bowing upwards, sampled at 20 points.
        t = np.linspace(0, 1, 20)
        cx, cy = (qx + kx) / 2, max(qy, ky) + 4 + abs(kx - qx) * 0.8
        xs = (1 - t) ** 2 * qx + 2 * (1 - t) * t * cx + t**2 * kx
        ys = (1 - t) ** 2 * qy + 2 * (1 - t) * t * cy + t**2 * ky
        strength = float(row[k]) / peak
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", showlegend=False, hoverinfo="text",
                                 text=f"{pitch_name(q.pitch)} -> {pitch_name(key.pitch)}: {row[k]:.3f}",
                                 line=dict(color=f"rgba(228,87,86,{0.25 + 0.75 * strength:.2f})",
                                           width=1 + 5 * strength)))
    fig.add_trace(go.Scatter(x=[qx], y=[qy], mode="markers", name="query note",
                             marker=dict(size=14, color="#E45756", symbol="star")))
    return fig


# ----------------------------------------------------------------------------- style
def gram_figure(grams: Mapping[str, object], title: str | None = None) -> go.Figure:
    """Gram matrices ``(C, C)`` side by side; with exactly two, their difference is added third.

    The Gram panels share one colour scale (so equal colours mean equal values across panels); the
    difference has its own, diverging around 0.

        >>> fig = gram_figure({"swing": np.eye(4), "waltz": np.ones((4, 4)) / 4})
    """
    if not grams:
        raise ValueError("grams is empty: give at least one named Gram matrix")
    mats = {name: _as_2d(f"grams[{name!r}]", g) for name, g in grams.items()}
    shapes = {m.shape for m in mats.values()}
    if len(shapes) != 1 or next(iter(shapes))[0] != next(iter(shapes))[1]:
        raise ValueError(f"Gram matrices must be square and all the same shape, got {sorted(shapes)}")
    low = min(float(m.min()) for m in mats.values())
    high = max(float(m.max()) for m in mats.values())
    panels = [(name, m, False) for name, m in mats.items()]
    if len(panels) == 2:
        (a, ga, _), (b, gb, _) = panels
        panels.append((f"{a} - {b}", ga - gb, True))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels],
                        horizontal_spacing=0.12 if len(panels) <= 3 else 0.05)
    for i, (name, m, diff) in enumerate(panels, start=1):
        if diff:
            bound = max(float(np.abs(m).max()), 1e-12)
            scale = dict(colorscale="RdBu_r", zmin=-bound, zmax=bound,
                         colorbar=dict(title="diff", x=1.13, len=0.9))
        else:
            scale = dict(colorscale="Viridis", zmin=low, zmax=high, showscale=i == 1,
                         colorbar=dict(title="G", x=1.02, len=0.9))
        fig.add_trace(go.Heatmap(z=m, name=name, hovertemplate=f"{name}<br>channel %{{y}} x %{{x}}: "
                                 "%{z:.4g}<extra></extra>", **scale), row=1, col=i)
        fig.update_yaxes(autorange="reversed", row=1, col=i)
    return _layout(fig, title, 340)


def style_loss_matrix(losses, labels: Sequence[str], title: str | None = None) -> go.Figure:
    """Pairwise style losses ``(N, N)`` between N references as a labelled heatmap (values written in).

        >>> fig = style_loss_matrix(np.array([[0, .2], [.2, 0]]), ["swing", "waltz"])
    """
    losses = _as_2d("losses", losses)
    if losses.shape != (len(labels), len(labels)):
        raise ValueError(f"losses must be ({len(labels)}, {len(labels)}) for {len(labels)} labels, got {losses.shape}")
    text = [[f"{v:.3g}" for v in row] for row in losses]
    fig = go.Figure(go.Heatmap(z=losses, x=list(labels), y=list(labels), text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, colorbar=dict(title="loss"),
                               hovertemplate="%{y} vs %{x}: %{z:.4g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, max(260, 40 * len(labels) + 120))


def style_embedding_map(embeddings, labels: Sequence[str], title: str | None = None) -> go.Figure:
    """A 2-D PCA map of style embeddings ``(N, D)``, coloured by style label."""
    emb = _as_2d("embeddings", embeddings)
    if len(labels) != emb.shape[0]:
        raise ValueError(f"labels has {len(labels)} entries for {emb.shape[0]} embeddings")
    centred = emb - emb.mean(axis=0, keepdims=True)
    # PCA by SVD: the first two right-singular vectors are the principal axes.
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred @ vt[:1].T, np.zeros(len(emb))]
    fig = go.Figure()
    for i, style in enumerate(dict.fromkeys(labels)):
        idx = [j for j, s in enumerate(labels) if s == style]
        fig.add_trace(go.Scatter(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=style,
                                 marker=dict(size=9, color=PALETTE[i % len(PALETTE)])))
    fig.update_xaxes(title="PC 1")
    fig.update_yaxes(title="PC 2")
    return _layout(fig, title, 420)


def training_curves(history: Mapping[str, Sequence[float]], x_key: str = "step",
                    title: str | None = None) -> go.Figure:
    """Lines for every series in ``history`` against ``history[x_key]`` (e.g. loss, val_loss, lr)."""
    if x_key not in history:
        raise ValueError(f"history has no {x_key!r} series (keys: {sorted(history)})")
    x = list(history[x_key])
    series = [k for k in history if k != x_key]
    fig = make_subplots(rows=len(series) or 1, cols=1, shared_xaxes=True, subplot_titles=series)
    for i, key in enumerate(series, start=1):
        y = list(history[key])
        if len(y) != len(x):
            raise ValueError(f"history[{key!r}] has {len(y)} values for {len(x)} {x_key} values")
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=key), row=i, col=1)
    fig.update_xaxes(title=x_key, row=len(series) or 1, col=1)
    return _layout(fig, title, 180 * max(len(series), 1) + 60)


# ----------------------------------------------------------------------------- error breakdown
ERROR_LABELS = {"exact": "exact", "octave": "octave off", "wrong_pitch": "right onset, wrong pitch",
                "timing": "right pitch, onset off", "other": "other"}
ERROR_COLORS = {"exact": "#54A24B", "octave": "#72B7B2", "wrong_pitch": "#E45756", "timing": "#EECA3B",
                "other": "#BAB0AC"}


def error_breakdown_figure(breakdowns: Mapping[str, Mapping[str, int]], title: str | None = None) -> go.Figure:
    """Stacked horizontal bars, one per output: the shares of its notes in each class of
    :func:`mstoolkit.metrics.error_breakdown` (exact, octave, wrong pitch, timing, other).

        >>> error_breakdown_figure({"model": error_breakdown(output, target)})  # doctest: +SKIP

    ``breakdowns`` maps a label (e.g. ``"swing: model"``) to that output's counts; an output with
    no notes gets an empty bar. The hover shows each class's note count.
    """
    from mstoolkit.metrics import ERROR_KINDS, error_shares

    for label, counts in breakdowns.items():
        missing = [k for k in ("n_output", "n_target", "missed", *ERROR_KINDS) if k not in counts]
        if missing:
            raise ValueError(f"breakdowns[{label!r}] is not an error_breakdown result: no {missing}")
    labels = list(breakdowns)
    shares = {label: error_shares(counts) for label, counts in breakdowns.items()}
    fig = go.Figure()
    for kind in ERROR_KINDS:
        x = [0.0 if np.isnan(shares[label][kind]) else shares[label][kind] for label in labels]
        counts = [breakdowns[label][kind] for label in labels]
        fig.add_trace(go.Bar(
            y=labels, x=x, orientation="h", name=ERROR_LABELS[kind], marker_color=ERROR_COLORS[kind],
            text=[f"{v:.0%}" if v >= 0.05 else "" for v in x], textposition="inside", customdata=counts,
            hovertemplate="%{y}: %{customdata} notes " + ERROR_LABELS[kind] + " (%{x:.1%})<extra></extra>"))
    fig.update_layout(barmode="stack", legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title="share of the output's notes", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, 40 * len(labels) + 170)


# ----------------------------------------------------------------------------- pitch hints
def pitch_hint_figure(bias, notes: Sequence, content: Piece | None = None, lowest_pitch: int = 0,
                      title: str | None = None) -> go.Figure:
    """What a pitch-hint model's content maps said before each note: one column per target note, one row
    per pitch, coloured by the logit bias the hints gave that pitch (red: pushed up, blue: pushed down);
    a dot marks the pitch the note has, grey ticks the content pitches sounding at its onset.

        >>> pitch_hint_figure(maps.pitch_hint[0, program_positions], target.notes, content)  # doctest: +SKIP

    ``bias (N, P)``: row i for note i of ``notes`` (objects with ``pitch`` and ``start``); column p is
    pitch ``lowest_pitch + p``. Only the rows of pitches within an octave of the notes are drawn.
    """
    bias = _as_2d("bias", bias)
    if len(notes) != bias.shape[0]:
        raise ValueError(f"bias has {bias.shape[0]} rows for {len(notes)} notes")
    fig = go.Figure()
    if not len(notes):
        return _layout(fig, title or "no notes", 240)
    pitches = [n.pitch for n in notes] + ([n.pitch for n in content.notes] if content is not None else [])
    low = max(lowest_pitch, min(pitches) - 12)
    high = min(lowest_pitch + bias.shape[1] - 1, max(pitches) + 12)
    rows = bias[:, low - lowest_pitch: high - lowest_pitch + 1].T  # (pitches shown, N)
    reach = float(np.abs(rows).max()) or 1.0
    beats = [n.start / TICKS_PER_QUARTER for n in notes]
    hover = [[f"note {i}, beat {beats[i]:g}<br>{pitch_name(p)}: bias {rows[p - low, i]:+.2f}"
              for i in range(len(notes))] for p in range(low, high + 1)]
    fig.add_trace(go.Heatmap(z=rows, x=list(range(len(notes))), y=list(range(low, high + 1)), text=hover,
                             hoverinfo="text", colorscale="RdBu", reversescale=True, zmin=-reach, zmax=reach,
                             colorbar=dict(title="bias")))
    if content is not None:
        xs, ys = [], []
        for i, note in enumerate(notes):
            for c in content.notes:
                if c.start <= note.start < c.end:
                    xs.append(i)
                    ys.append(c.pitch)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="content sounding",
                                 marker=dict(symbol="line-ew-open", size=12, color="#555555")))
    fig.add_trace(go.Scatter(x=list(range(len(notes))), y=[n.pitch for n in notes], mode="markers",
                             name="note written", marker=dict(size=6, color="black"),
                             text=[pitch_name(n.pitch) for n in notes], hoverinfo="text"))
    fig.update_xaxes(title="target note")
    fig.update_yaxes(title="pitch", tickvals=[p for p in range(low, high + 1) if p % 12 == 0],
                     ticktext=[pitch_name(p) for p in range(low, high + 1) if p % 12 == 0])
    fig.update_layout(legend=dict(orientation="h", y=-0.2))
    return _layout(fig, title, 420)
