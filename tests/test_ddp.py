"""DistributedDataParallel: `torchrun --nproc_per_node=2` running `mstoolkit train` on CPU (gloo)
computes the same gradients and losses as one process with the same global batch.

Run by torchrun, this file is the worker: the CLI's `train`, with the first step's gradients saved
(AdamW.step is wrapped) so the test can compare them with a single-process run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
STEPS = 3
# Tolerances: the processes add their gradients in another order than one process does (float32
# rounding), and run with one thread each.
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-7
LOSS_RTOL = 1e-5


def save_first_gradients(path: str) -> None:
    """Wrap AdamW.step so that its first call saves every parameter's gradient to ``path``."""
    step = torch.optim.AdamW.step

    def saving_step(self, *args, **kwargs):
        if not getattr(self, "_gradients_saved", False):
            torch.save([p.grad.clone() for group in self.param_groups for p in group["params"]], path)
            self._gradients_saved = True
        return step(self, *args, **kwargs)

    torch.optim.AdamW.step = saving_step


if __name__ == "__main__":  # a torchrun worker
    from mstoolkit.cli import main

    save_first_gradients(f"{os.environ['MSTOOLKIT_TEST_GRADIENTS']}.rank{os.environ['RANK']}")
    sys.exit(main(sys.argv[1:]))

import pytest  # noqa: E402  (the worker above needs neither pytest nor the fixtures)

from mstoolkit.train import Trainer  # noqa: E402
from test_train import first_step_gradients, tiny_corpus, train_config  # noqa: E402


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path_factory, tmp_path):
    folder, cache = tiny_corpus(tmp_path_factory)
    common = dict(max_steps=STEPS, eval_every=STEPS, ckpt_every=STEPS, eval_samples=4, style_loss_weight=0.0,
                  device="cpu")
    single = Trainer(train_config(folder, cache, tmp_path / "single", batch_size=4, **common), progress=False)
    single_grads = first_step_gradients(single)
    single.fit()

    config = train_config(folder, cache, tmp_path / "ddp", batch_size=2, **common)  # 2 per process x 2
    config.save(tmp_path / "ddp.yaml")
    gradients = tmp_path / "gradients"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MSTOOLKIT_TEST_GRADIENTS": str(gradients),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__,
         "train", "--config", str(tmp_path / "ddp.yaml"), "--quiet"],
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es)" in result.stdout and result.stdout.count("training debug") == 1  # rank 0 alone prints

    rank0, rank1 = (torch.load(f"{gradients}.rank{r}", weights_only=True) for r in (0, 1))
    assert len(rank0) == len(single_grads) > 10
    for a, b, c in zip(rank0, rank1, single_grads):
        assert torch.equal(a, b)  # DDP left both processes with the same averaged gradient
        torch.testing.assert_close(a, c, rtol=GRAD_RTOL, atol=GRAD_ATOL)

    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    val_losses = [r["val_loss"] for r in log if "val_loss" in r]
    assert losses == pytest.approx(single.history["loss"], rel=LOSS_RTOL)
    assert val_losses == pytest.approx(single.history["val_loss"], rel=LOSS_RTOL)
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["latest", "log.jsonl", f"step_{STEPS:06d}",
                                                                     "train_config.json"]
