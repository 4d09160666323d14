"""Tests for mstoolkit.train: config round trips and overrides, the schedule, the data order, exact
resume after a crash (in-process and SIGKILL), NaN stops, gradient accumulation, callbacks.

The corpus is eight 2-bar chorale-like pieces written as MIDI files, three styles, the `debug` model.
``tiny_corpus`` and ``train_config`` are imported by test_cli.py and test_ddp.py.
"""
from __future__ import annotations

import collections
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from mstoolkit.checkpoint import load_pretrained
from mstoolkit.config import UserError
from mstoolkit.data import StyleBenchDataset, build_stylebench
from mstoolkit.piece import Note, Piece, TempoChange, TimeSignature
from pieces import make_piece as shared_make_piece
from mstoolkit.checkpoint import LATEST_NAME, latest_checkpoint, read_log
from mstoolkit.train import NonFiniteLossError, DataOrder, SeededItems, TrainConfig, Trainer, get_lr

ROOT = Path(__file__).resolve().parent.parent
STYLES = ("straight", "swing", "waltz")
# seed 3 splits these eight file names 4 train / 2 val / 2 test; one 2-bar window per piece
DATA = {"styles": STYLES, "window_bars": 2, "split_fractions": (0.5, 0.25, 0.25), "seed": 3,
        "triplets_per_window": 2, "eval_triplets_per_window": 2, "max_eval_triplets": None}


def make_piece(name: str, root: int, n_bars: int = 2) -> Piece:
    """The shared chorale-like piece, two bars long by default (training tests stay fast)."""
    return shared_make_piece(name, root, n_bars)


def tiny_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(folder of 8 MIDI files, data cache) shared by every test of the session; reference mels are
    cached there by the first trainer that needs them."""
    base = tmp_path_factory.getbasetemp()
    folder, cache = base / "train-corpus", base / "train-cache"
    if not folder.is_dir():
        folder.mkdir()
        for i in range(8):
            make_piece(f"piece{i:02d}", i).save_midi(folder / f"piece{i:02d}.mid")
    return folder, cache


def train_config(corpus: Path, cache: Path, out: Path, **overrides) -> TrainConfig:
    """The debug preset on the tiny corpus: 2 triplets per micro-batch, eval on 4 val triplets."""
    settings = dict(max_steps=6, warmup_steps=2, eval_every=3, ckpt_every=3, eval_samples=4)
    return TrainConfig.preset("debug", data={**DATA, "corpus": str(corpus)}, cache_dir=str(cache), out=str(out),
                              **{**settings, **overrides})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory)


@pytest.fixture(scope="module")
def bench(corpus):
    folder, cache = corpus
    return build_stylebench(train_config(folder, cache, Path("unused")).data, cache, progress=False)


@pytest.fixture(scope="module")
def reference_run(corpus, bench, tmp_path_factory):
    """An uninterrupted 6-step run (checkpoints at 3 and 6)."""
    out = tmp_path_factory.mktemp("reference")
    trainer = Trainer(train_config(*corpus, out), bench=bench, progress=False)
    trainer.fit()
    return trainer


# ------------------------------------------------------------------------------ config
def test_config_round_trips_through_json_and_yaml_and_takes_string_overrides(tmp_path):
    cfg = TrainConfig.preset("debug").with_overrides(
        {"lr": "3e-4", "max-steps": "7", "compile": "true", "data.styles": "swing,waltz",
         "data.split_fractions": "0.6,0.2,0.2", "model.dropout": "0.1", "data.limit": "none"})
    assert (cfg.lr, cfg.max_steps, cfg.compile, cfg.data.styles) == (3e-4, 7, True, ("swing", "waltz"))
    assert cfg.data.split_fractions == (0.6, 0.2, 0.2) and cfg.model == {"dropout": 0.1} and cfg.data.limit is None
    for name in ("run.json", "run.yaml"):
        assert TrainConfig.load(cfg.save(tmp_path / name)) == cfg
    (tmp_path / "partial.yaml").write_text("model_preset: debug\nlr: 0.002\ndata:\n  window_bars: 2\n")
    partial = TrainConfig.load(tmp_path / "partial.yaml")
    assert (partial.batch_size, partial.lr, partial.data.window_bars) == (2, 0.002, 2)  # debug preset + file
    assert cfg.model_config(vocab_size=50).dropout == 0.1 and cfg.model_config(50).d_content == 32


@pytest.mark.parametrize("overrides, message", [
    ({"lrr": "1"}, "unknown config key 'lrr'; did you mean lr"),
    ({"lr": "fast"}, "lr: expected a number, got 'fast'"),
    ({"batch_size": "0"}, "batch_size: expected an integer >= 1"),
    ({"compile": "maybe"}, "compile: expected true or false"),
    ({"decay": "cos"}, "decay: expected one of"),
    ({"min_lr": "1"}, "min_lr: expected a number <= lr"),
    ({"data.styles": "swing,polka"}, r"unknown style\(s\) \['polka'\]"),
    ({"model.n_layers": "3"}, "unknown config key 'model.n_layers'"),
    ({"model.dropout": "2"}, "dropout"),
    ({"data.split_fractions": "0.5,0.5"}, "expected 3 values"),
    ({"collection_repeats": "bach"}, "collection_repeats: expected entries 'collection=N'"),
    ({"collection_repeats": "bach=0"}, "collection_repeats: expected entries 'collection=N'"),
    ({"rebar_meters": "5/4,seven"}, "rebar_meters: meter 'seven'"),
    ({"rebar_meters": "5/4", "rebar_prob": 2}, "rebar_prob: expected a number in \\[0, 1\\]"),
    ({"rebar_prob": 0.1}, "rebar_prob: expected 0 when rebar_meters is empty"),
    ({"identity_prob": 1.5}, "identity_prob: expected a number in \\[0, 1\\]"),
    ({"plain_content_prob": -1}, "plain_content_prob: expected a number in \\[0, 1\\]"),
])
def test_bad_config_keys_and_values_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.preset("debug").with_overrides(overrides)


def test_bad_config_files_name_the_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("lr: [1, 2\n")
    with pytest.raises(ValueError, match="bad.yaml: not a readable"):
        TrainConfig.load(tmp_path / "bad.yaml")
    (tmp_path / "typo.json").write_text('{"learning_rate": 0.1}')
    with pytest.raises(ValueError, match="typo.json: unknown config key 'learning_rate'"):
        TrainConfig.load(tmp_path / "typo.json")
    with pytest.raises(ValueError, match="no such config file"):
        TrainConfig.load(tmp_path / "missing.yaml")


# ------------------------------------------------------------------------------ schedule and data order
def test_get_lr_warms_up_linearly_then_decays_to_min_lr():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110)
    assert [get_lr(s, cfg) for s in (0, 4, 9)] == pytest.approx([1e-4, 5e-4, 1e-3])
    assert get_lr(60, cfg) == pytest.approx(5.5e-4)  # cosine half-way
    assert get_lr(110, cfg) == get_lr(500, cfg) == 1e-4
    decay = [get_lr(s, cfg) for s in range(9, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    linear = TrainConfig(lr=1e-3, min_lr=0.0, warmup_steps=0, max_steps=100, decay="linear")
    assert [get_lr(s, linear) for s in (0, 25, 100)] == pytest.approx([1e-3, 7.5e-4, 0.0])
    assert get_lr(70, TrainConfig(decay="constant", warmup_steps=0)) == TrainConfig().lr


def test_data_order_covers_each_epoch_once_and_shards_like_one_big_batch():
    single = DataOrder(11, batch_size=4, seed=5)
    ranks = [DataOrder(11, batch_size=2, seed=5, rank=r, world_size=2) for r in range(2)]
    position, seen = (0, 0), []
    for _ in range(4):  # two micro-batches of 4 per epoch; the remainder of 3 is dropped
        batch = single.batch(position)
        assert batch == ranks[0].batch(position) + ranks[1].batch(position)
        seen += batch
        position = single.advance(position)
    epoch0, epoch1 = [i for e, i in seen if e == 0], [i for e, i in seen if e == 1]
    assert len(set(epoch0)) == len(epoch0) == 8 and len(epoch1) == 8 and epoch0 != epoch1
    assert position == (2, 0) and single.batch((1, 4)) == DataOrder(11, 4, seed=5).batch((1, 4))  # pure
    with pytest.raises(ValueError, match="fewer than one micro-batch"):
        DataOrder(3, batch_size=2, seed=0, world_size=2)


def test_data_order_grouped_by_length_pads_less_and_stays_a_seeded_permutation():
    rng = torch.Generator().manual_seed(0)
    lengths = torch.randint(100, 600, (203,), generator=rng).tolist()

    def order(**kw):
        return DataOrder(203, batch_size=8, seed=3, lengths=lengths, **kw)

    def padding(o: DataOrder, epoch: int) -> float:  # the share of a batch's tokens that are padding
        batches = [[lengths[i] for i in o.permutation(epoch)[s:s + 8]] for s in range(0, 200, 8)]
        return 1 - sum(map(sum, batches)) / sum(8 * max(b) for b in batches)

    plain, grouped = order(), order(group=5)
    for epoch in (0, 1):
        perm = grouped.permutation(epoch)
        assert sorted(perm) == list(range(203))  # every item once per epoch
        assert perm == order(group=5).permutation(epoch)  # a function of seed and epoch (resumable)
        assert padding(grouped, epoch) < 0.5 * padding(plain, epoch)
    assert grouped.permutation(0) != grouped.permutation(1)
    starts = [lengths[grouped.permutation(0)[s]] for s in range(0, 200, 8)]
    assert starts != sorted(starts)  # batches come in random length order, not shortest first
    with pytest.raises(ValueError, match="needs one length per item"):
        DataOrder(203, batch_size=8, seed=3, group=5)


def test_trainer_groups_by_length_from_the_datasets_token_counts(corpus, bench, tmp_path):
    trainer = Trainer(train_config(*corpus, tmp_path / "grouped", group_by_length=2, max_steps=2), bench=bench,
                      progress=False)
    counts = [len(trainer.tokenizer.encode(bench.content(t))) + len(trainer.tokenizer.encode(bench.target(t)))
              for t in bench.triplets["train"]]
    assert trainer.order.lengths == counts == trainer.train_set.lengths()  # the second call reads the cache
    trainer.fit()
    assert trainer.step == 2
    with pytest.raises(UserError, match="group_by_length"):
        train_config(*corpus, tmp_path / "bad", group_by_length=-1)


def test_augmentation_is_a_function_of_seed_epoch_and_index_and_spares_the_global_rng(bench):
    items = SeededItems(StyleBenchDataset(bench, "train"), seed=0)
    state = torch.get_rng_state()
    shifts = [items[(0, i)]["transpose"] for i in range(len(items))]
    assert torch.equal(torch.get_rng_state(), state)
    assert [items[(0, i)]["transpose"] for i in range(len(items))] == shifts
    assert [items[(1, i)]["transpose"] for i in range(len(items))] != shifts
    assert len(set(shifts)) > 1


def test_reference_augmentation_renders_the_extra_timbres_first_and_trains(corpus, bench, tmp_path):
    trainer = Trainer(train_config(*corpus, tmp_path / "augmented", reference_timbres=2, reference_room=True,
                                   reference_spectrum=True, reference_transpose=7, max_steps=2), bench=bench, progress=False)
    assert trainer.train_set.reference_timbres == 2 and trainer.train_set.reference_room
    assert trainer.train_set.reference_spectrum and trainer.train_set.reference_transpose == 7
    assert not (trainer.val_set.reference_timbres or trainer.val_set.reference_room
                or trainer.val_set.reference_spectrum)  # val CE on clean references
    rendered = {key[:2] for key in bench._mel_paths if key[2:] == (2, 7)}  # precomputed (and moved) before step 1
    assert rendered == {(t.reference_id, t.style_b) for t in bench.triplets["train"]}
    items = SeededItems(trainer.train_set, seed=0)
    assert torch.equal(items[(0, 1)]["reference_mel"], items[(0, 1)]["reference_mel"])  # seeded per item
    trainer.fit()
    assert trainer.step == 2 and len(trainer.history["loss"]) == 2 and all(map(math.isfinite, trainer.history["loss"]))
    with pytest.raises(UserError, match="reference_timbres"):
        train_config(*corpus, tmp_path / "bad", reference_timbres=-1)
    with pytest.raises(UserError, match="reference_transpose"):
        train_config(*corpus, tmp_path / "bad", reference_transpose=12)  # nothing redrawn to move


def test_collection_repeats_put_a_collections_triplets_n_times_into_each_epoch(corpus, bench, tmp_path):
    # the tiny corpus is one folder: every piece's collection is "(folder)" (data.collection_of)
    trainer = Trainer(train_config(*corpus, tmp_path / "repeated", collection_repeats="(folder)=2", max_steps=2),
                      bench=bench, progress=False)
    n = len(trainer.train_set)
    assert len(trainer.train_items) == trainer.order.n == 2 * n
    seen = collections.Counter(trainer.train_items.indices[i] for i in trainer.order.permutation(0))
    assert seen == {i: 2 for i in range(n)}  # every triplet twice an epoch
    items = SeededItems(trainer.train_items, seed=0)
    copies = [(items[(0, i)]["transpose"], items[(0, i + n)]["transpose"]) for i in range(n)]
    assert any(a != b for a, b in copies)  # the two copies of a triplet are augmented independently
    trainer.fit()
    assert trainer.step == 2
    with pytest.raises(UserError, match=r"no train triplets from \['bach'\]; the train split's collections: \['\(folder\)'\]"):
        Trainer(train_config(*corpus, tmp_path / "typo", collection_repeats="bach=3"), bench=bench, progress=False)


# ------------------------------------------------------------------------------ the loop
def test_training_lowers_the_loss_and_writes_loadable_checkpoints(reference_run):
    history = reference_run.history
    assert history["step"] == [1, 2, 3, 4, 5, 6] and history["eval_step"] == [3, 6]
    assert history["loss"][-1] < history["loss"][0] and history["val_loss"][1] < history["val_loss"][0]
    assert all(v > 0 for v in history["tokens_per_s"]) and history["lr"][:2] == [5e-4, 1e-3]

    out = Path(reference_run.config.out)
    assert sorted(p.name for p in out.glob("step_*")) == ["step_000003", "step_000006"]
    assert (out / LATEST_NAME).read_text().strip() == "step_000006" and not list(out.glob(".tmp-*"))
    loaded = load_pretrained(str(out / "step_000006"))  # an ordinary pretrained folder
    for name, tensor in reference_run.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["val_loss"] for r in log if "val_loss" in r] == history["val_loss"]
    assert read_log(out) == history  # the library's reader gives back every key the trainer logged


def test_read_log_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="no training log here"):
        read_log(tmp_path)
    (tmp_path / "log.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 1, "val_loss": 1.5, "val_note_f1": 0.5}\n'
                                        '{"step": 2, "val_loss": 1.0}\n')
    history = read_log(tmp_path)
    assert history["loss"] == [2.0] and history["grad_norm"] == [None]  # a key the record lacks reads None
    assert history["eval_step"] == [1, 2] and history["val_note_f1"] == [0.5, None]
    (tmp_path / "log.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    with pytest.raises(ValueError, match="line 2: not JSON"):
        read_log(tmp_path)


def test_a_run_folder_opens_as_its_latest_checkpoint_with_its_tokenizer(reference_run, tmp_path):
    """What `mstoolkit transfer --checkpoint RUN` and the widgets open: the run's latest checkpoint and
    the tokenizer saved beside it; a mismatched tokenizer is refused, naming the folder."""
    from mstoolkit.checkpoint import load_with_tokenizer
    from mstoolkit.tokenizer import RemiTokenizer, TokenizerConfig

    out = Path(reference_run.config.out)
    model, tokenizer, folder = load_with_tokenizer(out)
    assert folder == out / "step_000006" and not model.training
    assert tokenizer.vocab_size == model.config.vocab_size == reference_run.tokenizer.vocab_size
    for name, tensor in reference_run.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    other = RemiTokenizer(TokenizerConfig(pitch_range=(21, 108)))  # a piano-only vocabulary
    with pytest.raises(ValueError, match=r"step_000006: the tokenizer has \d+ tokens but the model expects"):
        load_with_tokenizer(out, other)
    with pytest.raises(ValueError, match="holds no checkpoint"):
        load_with_tokenizer(tmp_path)


def test_resume_after_a_crash_continues_exactly(corpus, bench, reference_run, tmp_path):
    class Crash(Exception):
        pass

    def crash_at_5(trainer, metrics):
        if metrics["step"] == 5:
            raise Crash

    cfg = train_config(*corpus, tmp_path / "run")
    with pytest.raises(Crash):
        Trainer(cfg, bench=bench, progress=False, on_step=crash_at_5).fit()
    assert (tmp_path / "run" / LATEST_NAME).read_text().strip() == "step_000003"
    with pytest.raises(ValueError, match="already holds a training run"):
        Trainer(cfg, bench=bench, progress=False).fit()
    resumed = Trainer(cfg, bench=bench, progress=False)
    assert resumed.load_checkpoint().name == "step_000003" and resumed.step == 3
    history = resumed.fit()
    # bitwise: steps 1-3 of the crashed run (same seed, same losses) and 4-6 recomputed after the crash
    assert history["loss"] == reference_run.history["loss"]
    assert history["val_loss"] == reference_run.history["val_loss"]
    for name, tensor in reference_run.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5, 6]  # the crashed run's step 4 not twice


def test_init_from_starts_from_a_checkpoints_weights_with_a_fresh_schedule(corpus, bench, reference_run, tmp_path):
    trainer = Trainer(train_config(*corpus, tmp_path / "more", init_from=str(reference_run.out), max_steps=2),
                      bench=bench, progress=False)
    finished = reference_run.model.state_dict()
    assert all(torch.equal(v, finished[k]) for k, v in trainer.model.state_dict().items())
    assert trainer.step == 0
    trainer.fit()
    assert trainer.step == 2 and not all(torch.equal(v, finished[k]) for k, v in trainer.model.state_dict().items())
    with pytest.raises(UserError, match="init_from .*does not match this run's config"):
        Trainer(train_config(*corpus, tmp_path / "other", init_from=str(reference_run.out),
                             model={"n_dec_layers": 2}), bench=bench, progress=False)
    with pytest.raises(UserError, match="init_from .*cannot load"):
        Trainer(train_config(*corpus, tmp_path / "none", init_from=str(tmp_path / "missing")), bench=bench,
                progress=False)


def test_a_run_killed_with_sigkill_resumes_exactly(corpus, bench, reference_run, tmp_path):
    """The reference run's config, trained by the CLI in a subprocess that is killed (SIGKILL) as
    soon as its first checkpoint exists; resumed in-process, it ends exactly like the reference."""
    out = tmp_path / "killed"
    cfg = reference_run.config.with_overrides({"out": str(out)})
    cfg.save(tmp_path / "run.yaml")
    # One torch thread, like this test process (conftest): a different thread count changes the
    # order of float reductions, and the comparison below is bitwise.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mstoolkit.cli", "train", "--config", str(tmp_path / "run.yaml"),
                             "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while not (out / LATEST_NAME).exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 90 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = Trainer(cfg, bench=bench, progress=False)
    assert resumed.load_checkpoint().name == "step_000003"  # killed during steps 4-6
    assert resumed.fit()["loss"] == reference_run.history["loss"]


def test_nan_loss_stops_naming_the_step_without_a_checkpoint(corpus, bench, tmp_path):
    cfg = train_config(*corpus, tmp_path / "nan", ckpt_every=1)
    trainer = Trainer(cfg, bench=bench, progress=False)

    def poison(module, inputs, output):  # the style vectors of step 3 become NaN
        return output * float("nan") if trainer.step == 2 else output

    trainer.model.style_encoder.register_forward_hook(poison)
    with pytest.raises(NonFiniteLossError, match="step 3: loss is nan"):
        trainer.fit()
    assert trainer.step == 2 and latest_checkpoint(tmp_path / "nan").name == "step_000002"
    assert not (tmp_path / "nan" / "step_000003").exists()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def first_step_gradients(trainer: Trainer) -> list[torch.Tensor]:
    """Filled with every parameter's gradient (clipped, as the optimizer sees it) at the first step."""
    grads: list[torch.Tensor] = []
    step = trainer.optimizer.step

    def capture(*args, **kwargs):
        if not grads:
            grads.extend(p.grad.clone() for group in trainer.optimizer.param_groups for p in group["params"])
        return step(*args, **kwargs)

    trainer.optimizer.step = capture
    return grads


def test_gradient_accumulation_matches_one_big_batch(corpus, bench, tmp_path):
    """Loss = sum of token losses / tokens of the whole step, so 2 x 2 micro-batches == 1 x 4."""
    runs = []
    for batch_size, accum in ((4, 1), (2, 2)):
        cfg = train_config(*corpus, tmp_path / f"b{batch_size}", batch_size=batch_size, grad_accum=accum,
                           max_steps=2, eval_every=0, eval_samples=0, ckpt_every=0, style_loss_weight=0.0)
        trainer = Trainer(cfg, bench=bench, progress=False)
        grads = first_step_gradients(trainer)
        trainer.fit()
        runs.append((trainer.history, grads))
    (big, big_grads), (small, small_grads) = runs
    assert small["loss"] == pytest.approx(big["loss"], rel=1e-6, abs=0)
    assert small["grad_norm"] == pytest.approx(big["grad_norm"], rel=1e-5)
    assert len(big_grads) == len(small_grads) > 10
    for a, b in zip(big_grads, small_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_style_loss_weight_switches_the_contrastive_term(corpus, bench, tmp_path):
    """Batches of 4 references over 3 styles always share a style, so the term is defined."""
    losses = {}
    for weight in (0.0, 1.0):
        cfg = train_config(*corpus, tmp_path / f"w{weight}", batch_size=4, max_steps=2, eval_every=0,
                           eval_samples=0, ckpt_every=0, style_loss_weight=weight)
        trainer = Trainer(cfg, bench=bench, progress=False)
        losses[weight] = trainer.fit()
    assert losses[0.0]["style_loss"] == [0.0, 0.0] and all(v > 0 for v in losses[1.0]["style_loss"])
    assert losses[1.0]["loss"][0] == losses[0.0]["loss"][0]  # same first batch, same token loss
    assert losses[1.0]["loss"][1] != losses[0.0]["loss"][1]  # the style term changed the update


def test_pitch_loss_weight_weighs_the_pitch_targets_only(corpus, bench, tmp_path):
    """The weighted token sum is sum(w(target) * CE), with w = pitch_loss_weight on Pitch targets and 1
    elsewhere; validation stays the plain cross-entropy, so val losses compare across weights."""
    cfg = train_config(*corpus, tmp_path / "pw", batch_size=4, max_steps=1, eval_every=0, eval_samples=4,
                       ckpt_every=0, style_loss_weight=0.0, pitch_loss_weight=3.0)
    trainer = Trainer(cfg, bench=bench, progress=False)
    batch = next(iter(torch.utils.data.DataLoader(trainer.val_set, batch_size=4, collate_fn=__import__(
        "mstoolkit.data", fromlist=["collate"]).collate)))
    inputs = trainer._inputs(batch)
    with torch.no_grad():
        weighted, _ = trainer.objective(*inputs)
        plain, _ = trainer.objective(*inputs, weighted=False)
        model = trainer.model
        style = model.style_encoder(inputs[1])
        memory, mask = model.encode(inputs[0], style)
        logits = model.next_token_logits(inputs[2][:, :-1], memory, mask, inputs[0])  # (B, T-1, V)
        targets = inputs[2][:, 1:]
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T-1)
        real = targets.ne(model.config.pad_id)
        is_pitch = torch.tensor([t == "Pitch" for t in trainer.tokenizer.token_types])[targets]  # (B, T-1)
    assert is_pitch.any() and (~is_pitch & real).any()
    assert plain.item() == pytest.approx(ce[real].sum().item(), rel=1e-5)
    assert weighted.item() == pytest.approx((ce[real].sum() + 2 * ce[is_pitch & real].sum()).item(), rel=1e-5)
    with pytest.raises(ValueError, match="pitch_loss_weight"):
        TrainConfig.preset("debug").with_overrides({"pitch_loss_weight": "0"})


def test_activation_checkpointing_changes_nothing_and_bf16_autocast_runs(corpus, bench, reference_run, tmp_path):
    """Two warm-up steps (their learning rates do not depend on max_steps) with each flag."""
    stop_at_2 = lambda t, m: m["step"] == 2 and t.stop()  # noqa: E731
    runs = {}
    for name, flags in (("recompute", {"activation_checkpointing": True}), ("bf16", {"precision": "bf16"})):
        trainer = Trainer(train_config(*corpus, tmp_path / name, **flags), bench=bench, progress=False,
                          on_step=stop_at_2)
        runs[name] = trainer.fit()["loss"]
        assert trainer.precision == flags.get("precision", "fp32")
    assert runs["recompute"] == pytest.approx(reference_run.history["loss"][:2], rel=1e-6)
    assert runs["bf16"] == pytest.approx(reference_run.history["loss"][:2], rel=2e-2)


def test_callbacks_pause_and_stop(corpus, bench, tmp_path):
    events, times = [], {}
    trainer = Trainer(train_config(*corpus, tmp_path / "cb", max_steps=20), bench=bench, progress=False)

    def on_step(t, metrics):
        events.append(("step", metrics["step"]))
        times[metrics["step"]] = time.monotonic()
        if metrics["step"] == 1:  # a dashboard pauses, and resumes 0.3 s later from another thread
            t.pause()
            threading.Timer(0.3, t.unpause).start()
        if metrics["step"] == 4:
            t.stop()

    trainer.add_callback("on_step", on_step)
    trainer.add_callback("on_eval", lambda t, m: events.append(("eval", m["step"], m["val_loss"] > 0)))
    trainer.add_callback("on_checkpoint", lambda t, path: events.append(("checkpoint", path.name)))
    trainer.fit()
    assert events == [("step", 1), ("step", 2), ("step", 3), ("eval", 3, True), ("checkpoint", "step_000003"),
                      ("step", 4), ("checkpoint", "step_000004")]
    assert times[2] - times[1] >= 0.3 and trainer.step == 4
    with pytest.raises(ValueError, match="unknown event"):
        trainer.add_callback("on_epoch", print)
