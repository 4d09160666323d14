"""Losses, checked by their properties."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mstoolkit.losses import (gram_matrices, gram_matrix, gram_style_loss, style_contrastive_loss, style_feature_maps,
                              style_loss, token_cross_entropy)


def features(seed, shape=(3, 8, 50)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_gram_matrix_definition_and_normalisation():
    x = features(0)
    g = gram_matrix(x)
    assert g.shape == (3, 8, 8)
    assert torch.allclose(g[1], x[1] @ x[1].T / (8 * 50), atol=1e-6)
    assert torch.allclose(g, g.transpose(1, 2))
    # normalised by C * N: repeating the positions leaves it unchanged
    assert torch.allclose(gram_matrix(torch.cat([x, x], dim=2)), g, atol=1e-6)
    # a CNN map (B, C, H, W) is flattened
    assert torch.allclose(gram_matrix(x.view(3, 8, 5, 10)), g)
    with pytest.raises(ValueError, match="gram_matrix"):
        gram_matrix(torch.ones(8, 50))


@pytest.mark.parametrize("seed", range(5))
def test_style_loss_properties(seed):
    a, b = features(seed), features(seed + 100)
    assert style_loss(a, a) == 0
    assert style_loss(a, b) > 0
    assert torch.allclose(style_loss(a, b), style_loss(b, a))
    s = 1.7
    assert torch.allclose(gram_matrix(s * a), s**2 * gram_matrix(a), rtol=1e-5)
    assert torch.allclose(style_loss(s * a, s * b), s**4 * style_loss(a, b), rtol=1e-4)
    # permuting positions (time) keeps the style: Gram matrices ignore where things happen
    assert style_loss(a, a[:, :, torch.randperm(50)]) < 1e-10


def test_style_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        style_loss(features(0), features(1, (3, 7, 50)))


def test_contrastive_loss_prefers_clustered_styles():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(8)  # 4 styles x 8 references
    centers = torch.randn(4, 16, generator=g) * 3
    clustered = centers[labels] + 0.3 * torch.randn(32, 16, generator=g)
    shuffled = clustered[torch.randperm(32, generator=g)]
    low, high = style_contrastive_loss(clustered, labels), style_contrastive_loss(shuffled, labels)
    assert low < high - 1.0
    # only directions matter (embeddings are normalised)
    assert torch.allclose(style_contrastive_loss(5 * clustered, labels), low, atol=1e-5)


def test_contrastive_loss_gradient_pulls_same_style_together():
    labels = torch.tensor([0, 0, 1, 1])
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.2], [0.2, -1.0]], requires_grad=True)
    loss = style_contrastive_loss(z, labels, temperature=0.5)
    loss.backward()
    step = z.detach() - 0.1 * z.grad
    cos = F.cosine_similarity
    assert cos(step[0], step[1], dim=0) > cos(z[0].detach(), z[1].detach(), dim=0)


def test_contrastive_loss_needs_positives():
    with pytest.raises(ValueError, match="positives"):
        style_contrastive_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="temperature"):
        style_contrastive_loss(torch.randn(2, 4), torch.tensor([0, 0]), temperature=0)


def test_token_cross_entropy_ignores_padding():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 11, generator=g)
    targets = torch.randint(3, 11, (2, 6), generator=g)
    targets[1, 4:] = 0
    loss = token_cross_entropy(logits, targets)
    changed = logits.clone()
    changed[1, 4:] = 100 * torch.randn(2, 11, generator=g)  # whatever the model says at padding
    assert torch.allclose(token_cross_entropy(changed, targets), loss)
    keep = targets != 0
    assert torch.allclose(loss, F.cross_entropy(logits[keep], targets[keep]))


def test_token_cross_entropy_label_smoothing():
    logits = torch.tensor([[[10.0, 0.0, 0.0]]])
    targets = torch.tensor([[0]])
    plain = token_cross_entropy(logits, targets, pad_id=-100)
    smooth = token_cross_entropy(logits, targets, pad_id=-100, label_smoothing=0.3)
    assert smooth > plain  # a confident right answer is penalised for its confidence
    assert torch.allclose(smooth, F.cross_entropy(logits[0], targets[0], label_smoothing=0.3))
    with pytest.raises(ValueError, match="token_cross_entropy"):
        token_cross_entropy(logits[0], targets)


def test_style_features_of_an_encoder_and_their_gram_loss_agree_with_style_loss():
    """The stages' feature maps come from hooks on the encoder as it runs; their Gram matrices and the
    numpy loss on them give style_loss's value, and clips of different lengths compare."""
    from mstoolkit.checkpoint import debug_model

    encoder = debug_model().style_encoder
    mel = np.random.default_rng(0).uniform(-80, 0, (128, 40)).astype(np.float32)
    maps = style_feature_maps(encoder, mel)
    assert [f.shape[0] for f in maps] == [8, 16, 16] and not any(m._forward_hooks for m in encoder.net)  # hooks gone
    grams = gram_matrices(encoder, mel)
    assert np.allclose(grams[1], gram_matrix(maps[1][None])[0].numpy())
    other = style_feature_maps(encoder, mel[:, ::-1].copy())
    expected = float(style_loss(maps[2][None], other[2][None]))
    assert gram_style_loss(grams[2], gram_matrix(other[2][None])[0].numpy()) == pytest.approx(expected, rel=1e-4)
    assert gram_style_loss(grams[0], grams[0]) == 0.0
    shorter = gram_matrices(encoder, mel[:, :24])  # another clip length: the Grams still compare
    assert gram_style_loss(grams[0], shorter[0]) > 0
    with pytest.raises(ValueError, match="Gram shapes differ"):
        gram_style_loss(grams[0], grams[1])
