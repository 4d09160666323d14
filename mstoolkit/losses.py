"""Losses: Gram-matrix style loss (the seed's), a style-contrastive loss for the style encoder, and
token cross-entropy; and the style features they are taken on (a style encoder's stages, their Gram
matrices). Functions of tensors and arrays; only torch and numpy are imported (a style encoder is
used through its ``net`` and ``embed``, so this module does not import the model).

    >>> style_loss(features_a, features_b)          # (B, C, N) each -> scalar  # doctest: +SKIP
    >>> style_contrastive_loss(style_vectors, style_labels)  # doctest: +SKIP
    >>> grams = gram_matrices(model.style_encoder, mel)   # one (C, C) array per stage
    >>> token_cross_entropy_sum(logits, ids[:, 1:], chunk=4096)   # summed, 4096 targets at a time  # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations ``G = F F^T / (C * N)`` of ``features (B, C, N)`` -> ``(B, C, C)``.

    Dividing by ``C * N`` (channels times positions, as in Gatys et al.'s style transfer) makes the
    value independent of the feature map size, so layers and clip lengths can be compared and summed.
    Extra trailing dimensions are flattened into ``N`` (e.g. a CNN map ``(B, C, H, W)``).

        >>> gram_matrix(torch.ones(2, 3, 4))[0, 0, 0]   # sum of 4 ones / (3 * 4)
        tensor(0.3333)
    """
    if features.dim() < 3:
        raise ValueError(f"gram_matrix: expected features (B, C, N) or (B, C, H, W), got {tuple(features.shape)}")
    f = features.flatten(2)  # (B, C, N)
    _, C, N = f.shape
    return f @ f.transpose(1, 2) / (C * N)  # (B, C, C)


def style_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the Gram matrices of two feature batches (the seed's style loss).

    ``style_loss(x, x) == 0``; symmetric; scaling both inputs by ``s`` scales it by ``s**4``.

        >>> style_loss(torch.randn(2, 8, 100), torch.randn(2, 8, 100)).shape
        torch.Size([])
    """
    if a.shape != b.shape:
        raise ValueError(f"style_loss: feature shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    return F.mse_loss(gram_matrix(a), gram_matrix(b))


def style_feature_maps(encoder: Any, mel: Any) -> list[torch.Tensor]:
    """The feature maps ``(C, F', T')`` after each convolution stage of a style encoder
    (:class:`~mstoolkit.model.StyleEncoder`) for one mel ``(n_mels, frames)``.

    Taken with forward hooks on the stages' activations (the GELUs of ``encoder.net``) while
    ``encoder.embed`` runs as usual, so the input scaling and layers are exactly the model's.

        >>> [tuple(f.shape) for f in style_feature_maps(model.style_encoder, mel)]   # doctest: +SKIP
        [(32, 64, 256), (64, 32, 128), (128, 16, 64)]
    """
    stages = [m for m in encoder.net if isinstance(m, torch.nn.GELU)]
    maps: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _inp, out: maps.append(out[0].detach())) for m in stages]
    try:
        encoder.embed(mel)  # (d_style,); the hooks keep each stage's (C, F', T') on the way
    finally:
        for hook in hooks:
            hook.remove()
    return maps


def gram_matrices(encoder: Any, mel: Any) -> list[np.ndarray]:
    """One Gram matrix ``(C, C)`` (:func:`gram_matrix`) per convolution stage of a style encoder for a
    mel ``(n_mels, frames)``, as float32 arrays.

        >>> g1, g2, g3 = gram_matrices(model.style_encoder, mel)   # doctest: +SKIP
    """
    return [gram_matrix(f[None])[0].float().cpu().numpy() for f in style_feature_maps(encoder, mel)]  # (C, C)


def gram_style_loss(gram_a: np.ndarray, gram_b: np.ndarray) -> float:
    """``mean((G_a - G_b)^2)``: :func:`style_loss` on Gram matrices already computed (so clips of
    different lengths compare: a Gram is ``(C, C)`` whatever ``N``).

        >>> gram_style_loss(np.eye(2), np.eye(2)), gram_style_loss(np.eye(2), np.zeros((2, 2)))
        (0.0, 0.5)
    """
    if np.shape(gram_a) != np.shape(gram_b):
        raise ValueError(f"gram_style_loss: Gram shapes differ, {np.shape(gram_a)} vs {np.shape(gram_b)}")
    return float(np.mean((np.asarray(gram_a, dtype=np.float64) - gram_b) ** 2))


def style_contrastive_loss(embeddings: torch.Tensor, style_labels: torch.Tensor,
                           temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020): references of the same style pull together,
    different styles push apart.

    ``embeddings (B, D)`` are L2-normalised; for each anchor ``i`` with at least one other example of
    its style, the loss is the mean over its positives ``p`` of ``-log softmax_j(cos(i, j) / T)[p]``,
    the softmax running over all ``j != i``; anchors are averaged. ``style_labels (B,)``: integer
    style ids. Raises ValueError when no two examples share a style (nothing to pull together).

        >>> style_contrastive_loss(model.style_encoder(mels), torch.tensor([0, 0, 1, 1]))  # doctest: +SKIP
    """
    if embeddings.dim() != 2 or style_labels.shape != embeddings.shape[:1]:
        raise ValueError(f"style_contrastive_loss: expected embeddings (B, D) and labels (B,), got "
                         f"{tuple(embeddings.shape)} and {tuple(style_labels.shape)}")
    if temperature <= 0:
        raise ValueError(f"style_contrastive_loss: temperature must be > 0, got {temperature}")
    z = F.normalize(embeddings.float(), dim=-1)  # (B, D)
    sim = z @ z.T / temperature  # (B, B)
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)  # (B, B)
    log_prob = sim.masked_fill(self_mask, float("-inf")).log_softmax(dim=-1)  # (B, B); diagonal -inf
    positives = (style_labels[:, None] == style_labels[None, :]) & ~self_mask  # (B, B)
    n_pos = positives.sum(-1)  # (B,)
    has_pos = n_pos > 0
    if not bool(has_pos.any()):
        raise ValueError("style_contrastive_loss: no two embeddings share a style label; a batch needs positives")
    pos_log_prob = log_prob.masked_fill(~positives, 0.0).sum(-1)  # (B,); masked first: 0 * -inf would be nan
    return -(pos_log_prob[has_pos] / n_pos[has_pos]).mean()


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0,
                        label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of ``logits (B, T, V)`` against ``targets (B, T)``, ignoring ``pad_id`` targets.

    ``label_smoothing`` moves that much probability mass evenly onto all classes (0 = off). Under
    autocast the reduction runs in float32 (PyTorch's autocast policy for cross-entropy).

        >>> token_cross_entropy(logits, ids[:, 1:], pad_id=0, label_smoothing=0.1)  # doctest: +SKIP
    """
    if logits.dim() != 3 or logits.shape[:2] != targets.shape:
        raise ValueError(f"token_cross_entropy: expected logits (B, T, V) and targets (B, T), got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),  # (B*T, V), (B*T,)
                           ignore_index=pad_id, label_smoothing=label_smoothing)


def token_cross_entropy_sum(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0,
                            token_weights: torch.Tensor | None = None, chunk: int = 0) -> torch.Tensor:
    """``sum_i w[target_i] * CE_i`` over the non-pad targets of ``logits (B, T, V)`` and ``targets (B, T)``,
    in float32 (``token_weights (V,)``: a weight per target id; None: all 1).

    ``chunk > 0`` computes it ``chunk`` target tokens (rows of the flattened ``(B*T, V)`` logits) at a
    time: each chunk's float32 copy of the logits is made, reduced and freed before the next, and made
    again in backward (activation checkpointing), so the float32 ``(B*T, V)`` copy that cross-entropy
    takes of bf16 logits never exists whole (at ``base``, 32 x 1024 targets, that copy and the
    log-softmax saved for backward are 97 MiB each with REMI's 777 ids). The value and the
    gradients equal ``chunk=0``'s up to float rounding (only the order of the sum differs); the cost is
    one more log-softmax per chunk in backward.

        >>> token_cross_entropy_sum(torch.zeros(1, 3, 4), torch.tensor([[1, 2, 0]]), chunk=2)  # 2 x log(4)
        tensor(2.7726)
    """
    if logits.dim() != 3 or logits.shape[:2] != targets.shape:
        raise ValueError(f"token_cross_entropy_sum: expected logits (B, T, V) and targets (B, T), got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    if not isinstance(chunk, int) or chunk < 0:
        raise ValueError(f"token_cross_entropy_sum: chunk must be an integer >= 0 (0 = all at once), got {chunk!r}")
    flat_logits = logits.reshape(-1, logits.size(-1))  # (N, V), N = B*T: a view when logits are contiguous
    flat_targets = targets.reshape(-1)  # (N,)

    def part(piece: torch.Tensor, piece_targets: torch.Tensor) -> torch.Tensor:
        each = F.cross_entropy(piece.float(), piece_targets, ignore_index=pad_id, reduction="none")  # (n,); 0 at pad
        if token_weights is not None:
            each = each * token_weights[piece_targets]
        return each.sum()

    if chunk == 0 or chunk >= len(flat_targets):
        return part(flat_logits, flat_targets)
    # Recompute in backward only when there is one: under no_grad (validation) the chunks are just summed.
    recompute = torch.is_grad_enabled() and logits.requires_grad
    # split, not slicing: its backward concatenates the chunks' gradients once, where each slice's backward
    # would write its chunk into a zero tensor of the full (N, V) size.
    sums = [checkpoint(part, piece, piece_targets, use_reentrant=False, preserve_rng_state=False)
            if recompute else part(piece, piece_targets)
            for piece, piece_targets in zip(flat_logits.split(chunk), flat_targets.split(chunk))]
    return torch.stack(sums).sum()
