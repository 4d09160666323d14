"""Speed switches change the speed, not the numbers (issue 16): the chunked vocabulary cross-entropy
(``TrainConfig.loss_chunk``, :func:`mstoolkit.losses.token_cross_entropy_sum`) gives the plain path's loss
and gradients, with and without the pitch weighting, with padding, for chunk sizes that do and do not
divide the number of targets; and it never keeps a float32 copy of the whole ``(B*T, V)`` logits.

Tolerances (float32): the loss sums agree to a relative 1e-6 (only the order of the sum differs), the
gradients to an absolute 1e-6 (logit gradients are at most 1 per token before the 1/N scaling).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mstoolkit.config import UserError
from mstoolkit.losses import token_cross_entropy, token_cross_entropy_sum
from mstoolkit.model import ModelConfig, MusicStyleTransformer
from mstoolkit.train import TrainConfig, TrainingObjective

PAD = 0
B, T, V = 3, 7, 11  # 21 targets: chunks of 1, 4, 5 and 20 leave a remainder; 7 and 21 divide them


def logits_and_targets(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(B, T, V, generator=g)).to(dtype).requires_grad_()  # (B, T, V)
    targets = torch.randint(1, V, (B, T), generator=g)  # (B, T)
    targets[0, 5:] = PAD  # padded rows, as a collated batch has them
    targets[2, 2:] = PAD
    weights = torch.where(torch.arange(V) % 3 == 0, 3.0, 1.0)  # (V,): "pitch" ids weigh 3
    return logits, targets, weights


def plain_sum(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The trainer's paths with loss_chunk 0 (TrainingObjective.forward)."""
    if weights is None:
        return token_cross_entropy(logits, targets, pad_id=PAD) * targets.ne(PAD).sum()
    each = F.cross_entropy(logits.reshape(-1, V).float(), targets.reshape(-1), ignore_index=PAD, reduction="none")
    return (each * weights[targets.reshape(-1)]).sum()


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "pitch-weighted"])
@pytest.mark.parametrize("chunk", [1, 4, 5, 7, 20, 21, 64])
def test_chunked_cross_entropy_equals_the_plain_one_with_its_gradient(chunk, weighted):
    logits, targets, weights = logits_and_targets()
    weights = weights if weighted else None
    reference = plain_sum(logits, targets, weights)
    (want,) = torch.autograd.grad(reference, logits)
    chunked = token_cross_entropy_sum(logits, targets, pad_id=PAD, token_weights=weights, chunk=chunk)
    (got,) = torch.autograd.grad(chunked, logits)
    assert chunked.dtype == torch.float32
    torch.testing.assert_close(chunked, reference, rtol=1e-6, atol=0)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert got[targets.eq(PAD)].abs().max() == 0  # pad targets take no gradient
    with torch.no_grad():  # validation: no recompute, the same number
        torch.testing.assert_close(token_cross_entropy_sum(logits, targets, PAD, weights, chunk), reference,
                                   rtol=1e-6, atol=0)


def test_chunked_cross_entropy_of_bf16_logits_keeps_no_whole_float32_copy():
    """What the switch is for: bf16 logits (autocast) are cast to float32 for the cross-entropy. The plain
    path saves a float32 (B*T, V) log-softmax for backward; the chunked one saves nothing that size."""
    logits, targets, weights = logits_and_targets(torch.bfloat16)
    saved: dict[str, list[int]] = {}

    def run(name: str, fn) -> torch.Tensor:
        sizes = saved.setdefault(name, [])

        def pack(t: torch.Tensor) -> torch.Tensor:
            if t.dtype == torch.float32:
                sizes.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = fn()
        return torch.autograd.grad(loss, logits)[0]

    want = run("plain", lambda: plain_sum(logits, targets, weights))
    got = run("chunked", lambda: token_cross_entropy_sum(logits, targets, PAD, weights, chunk=4))
    assert max(saved["plain"]) == B * T * V  # the test can see the copy
    assert max(saved["chunked"], default=0) <= 4 * V
    torch.testing.assert_close(got.float(), want.float(), rtol=0, atol=0)  # same float32 math, same bf16 rounding


def tiny_objective(loss_chunk: int, weights: torch.Tensor | None) -> TrainingObjective:
    torch.manual_seed(0)
    cfg = ModelConfig.preset("debug", vocab_size=40, n_mels=16, dropout=0.0)
    return TrainingObjective(MusicStyleTransformer(cfg), token_weights=weights, loss_chunk=loss_chunk)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "pitch-weighted"])
def test_training_objective_with_loss_chunk_gives_the_same_loss_and_weight_gradients(weighted):
    g = torch.Generator().manual_seed(1)
    content = torch.randint(3, 40, (3, 9), generator=g)
    content[1, 6:] = PAD
    target = torch.randint(3, 40, (3, 12), generator=g)  # decoder input target[:, :-1], 11 targets a row
    target[0, 8:] = PAD
    mel, labels = torch.randn(3, 16, 20, generator=g), torch.tensor([0, 0, 1])
    weights = torch.where(torch.arange(40) % 4 == 0, 2.5, 1.0) if weighted else None
    results = []
    for chunk in (0, 5, 11):  # 33 targets: 5 leaves a remainder, 11 is one row
        objective = tiny_objective(chunk, weights)
        tokens, _ = objective(content, mel, target, labels)
        tokens.backward()
        results.append((tokens.detach(), {n: p.grad.clone() for n, p in objective.named_parameters()
                                          if p.grad is not None}))
    (ref_loss, ref_grads), *others = results
    for loss, grads in others:
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
        assert grads.keys() == ref_grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, ref_grads[name], rtol=1e-5, atol=1e-6, msg=name)


def test_loss_chunk_is_a_train_config_key_and_flag_checked_by_name(capsys):
    assert TrainConfig().loss_chunk == 0
    assert TrainConfig.preset("debug").with_overrides({"loss_chunk": "4096"}).loss_chunk == 4096
    for bad in (-1, "-8"):
        with pytest.raises(UserError, match=r"TrainConfig\.loss_chunk: expected an integer >= 0"):
            TrainConfig.preset("debug").with_overrides({"loss_chunk": bad})
    with pytest.raises(ValueError, match="chunk must be an integer >= 0"):
        token_cross_entropy_sum(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), chunk=-1)
    import yaml

    from mstoolkit.cli import main

    assert main(["train", "--loss-chunk", "512", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["loss_chunk"] == 512
