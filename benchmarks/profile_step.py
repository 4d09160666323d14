#!/usr/bin/env python
"""Where the time of one training step and one decode step goes: a torch.profiler breakdown by category.

    PYTHONPATH=. python benchmarks/profile_step.py --device cpu                  # tiny, 4 x 256: seconds
    PYTHONPATH=. python benchmarks/profile_step.py --device cuda                 # base, 32 x 1024, bf16 autocast
    PYTHONPATH=. python benchmarks/profile_step.py --device cuda --loss-chunk 4096 --out prof.md

The training step is the trainer's (mstoolkit.train): TrainingObjective (style encoder, encoder, decoder,
head, token cross-entropy with TrainConfig.loss_chunk and pitch_loss_weight, style-contrastive loss) under
the trainer's autocast, backward, gradient clipping, the two host reads of loss and gradient norm, the
trainer's AdamW (fused on CUDA); one micro-batch of random ids (bench_model.random_batch). The decode step
is one Decoder.step (mstoolkit.generate: KV-cached decode_step plus grammar-masked sampling).

Each step runs --warmup times, then --repeat times unprofiled (the median is the step time used for
TFLOP/s), then once under torch.profiler. The table splits the profiled step by category: on CPU the
self CPU time of every op (an op inside a matmul, attention, cross-entropy or optimizer op takes that
op's category, so the softmax inside a math-path attention is attention), the rest (Python, framework,
profiler) under "other"; on CUDA the time of the kernels each op launched (kernels of a compiled region,
which no aten op launches, by their names), and the GPU's idle time within the step (waiting for the
host: launches, syncs). With --compile on CPU, inductor's fused C++ code is no named op: it shows as
"other". Host syncs: .item()/nonzero ops on CPU; on CUDA a line under the table gives the CPU time spent
in synchronize calls. TFLOP/s: the model FLOPs of the step (torch.utils.flop_counter, matmuls and
attention) over the unprofiled step time, against a large matmul timed on the same device (bf16 on CUDA,
fp32 on CPU). Needs only torch and numpy (plus this repository; the script adds it to the path).
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # the repo (mstoolkit) and benchmarks/ (bench_model): no install needed

import torch  # noqa: E402
from torch.autograd import DeviceType  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402
from torch.utils import flop_counter  # noqa: E402

from bench_model import Peak, bench_grammar, random_batch, settings, sync  # noqa: E402
from mstoolkit.config import UserError  # noqa: E402
from mstoolkit.generate import Decoder  # noqa: E402
from mstoolkit.model import PRESETS, MusicStyleTransformer  # noqa: E402
from mstoolkit.tokenizer import RemiTokenizer  # noqa: E402
from mstoolkit.train import TrainConfig, TrainingObjective, make_optimizer, pitch_token_weights  # noqa: E402

# Table rows, in this order. The names are part of the output format (tests/test_profile_step.py reads them).
MATMUL = "matmul / linear / conv"
ATTENTION = "attention (SDPA)"
VOCAB = "softmax / cross-entropy (vocabulary)"
OPTIMIZER = "optimizer (AdamW, grad clipping)"
ELEMENTWISE = "norm / elementwise"
COPIES = "memory copies / indexing"
OTHER = "other (Python, framework, profiler)"
SYNC = "host syncs"
IDLE = "GPU idle (waiting for the host)"
CATEGORIES = (MATMUL, ATTENTION, VOCAB, OPTIMIZER, ELEMENTWISE, COPIES, OTHER, SYNC, IDLE)
# An op of these categories keeps everything inside it (the matmuls of a math-path attention are attention);
# inside the others, the innermost op decides (an add inside a view's backward node is an add).
STRONG = (ATTENTION, VOCAB, OPTIMIZER, MATMUL)

# Op names, normalised by _key ("aten::_log_softmax" and "LogSoftmaxBackward0" both give "logsoftmax").
_MATMUL_OPS = {"mm", "addmm", "bmm", "baddbmm", "addbmm", "matmul", "linear", "addmmactivation", "scaledmm",
               "convolution", "conv1d", "conv2d", "mkldnnconvolution", "cudnnconvolution", "convolutionoverrideable",
               "slowconv2d", "slowconv2dforward", "mkldnnlinear", "einsum"}
_VOCAB_OPS = {"crossentropyloss", "logsoftmax", "softmax", "nllloss", "nllloss2d", "nlllossnd", "nlllossforward",
              "logsumexp", "multinomial"}  # multinomial: a decode step's sampling from the softmax
_SYNC_OPS = {"item", "localscalardense", "isnonzero", "nonzero", "equal"}
_COPY_OPS = {"copy", "tocopy", "to", "clone", "contiguous", "cat", "stack", "index", "indexselect", "gather", "scatter",
             "scatteradd", "embedding", "embeddingdensebackward", "embeddingbackward", "empty", "emptylike",
             "emptystrided", "zeros", "zeroslike", "ones", "oneslike", "full", "fulllike", "fill", "zero", "view",
             "reshape", "unsafeview", "transpose", "permute", "expand", "slice", "select", "split", "splitwithsizes",
             "unbind", "narrow", "asstrided", "t", "squeeze", "unsqueeze", "flatten", "repeat", "repeatinterleave",
             "detach", "alias", "pad", "constantpadnd", "indexput", "indexputimpl", "indexadd", "indexcopy",
             "indexfill", "newzeros", "newempty", "newfull", "resize", "lift", "liftfresh", "arange", "unfold", "roll",
             "flip", "maskedselect"}


def _key(name: str) -> str:
    """``"aten::_log_softmax"`` -> ``"logsoftmax"``; ``"autograd::engine::evaluate_function: MmBackward0"``
    -> ``"mm"``: one spelling for a forward op and its backward node."""
    name = name.rpartition("evaluate_function: ")[2].rpartition("::")[2]
    name = name.split(".")[0].replace("_", "").lower()
    for suffix in ("backward0", "backward1", "backward"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def op_category(name: str) -> str | None:
    """The category of a profiler event named ``name`` (an aten op, an autograd node, a record_function),
    or None when the name says nothing (a record_function of this script, an autograd node not listed here:
    the ops inside it decide, see :func:`event_category`).

        >>> op_category("aten::addmm"), op_category("autograd::engine::evaluate_function: LogSoftmaxBackward0")
        ('matmul / linear / conv', 'softmax / cross-entropy (vocabulary)')
    """
    lower = name.lower()
    if "optimizer" in lower or "adam" in lower or "clip_grad" in lower:
        return OPTIMIZER
    if "synchronize" in lower:  # cudaStreamSynchronize, cudaDeviceSynchronize
        return SYNC
    key = _key(name)
    if "scaleddotproduct" in key or "attention" in key:
        return ATTENTION
    if key in _MATMUL_OPS:
        return MATMUL
    if key in _VOCAB_OPS:
        return VOCAB
    if key in _SYNC_OPS:
        return SYNC
    is_op = name.startswith("aten::") or "evaluate_function: " in name
    if not is_op:
        return None
    if key in _COPY_OPS:
        return COPIES
    if "evaluate_function: " in name:  # a backward node we do not know: its aten ops decide
        return None
    return ELEMENTWISE  # the other aten ops: adds, muls, layer norms, GELU, dropout, masks, reductions


def kernel_category(name: str) -> str:
    """The category of a GPU kernel by its name, for kernels no op claims (a compiled region's Triton
    kernels: they run under a record_function, not an aten op).

        >>> kernel_category("sm90_xmma_gemm_bf16bf16_bf16f32"), kernel_category("triton_per_fused_native_layer_norm_0")
        ('matmul / linear / conv', 'norm / elementwise')
    """
    lower = name.lower()
    if any(word in lower for word in ("flash", "fmha", "attention", "sdpa", "attn")):
        return ATTENTION
    if any(word in lower for word in ("gemm", "gemv", "cutlass", "xmma", "cublas", "conv", "triton_tem", "_mm_")):
        return MATMUL
    if any(word in lower for word in ("softmax", "nll_loss", "cross_entropy", "logsumexp")):
        return VOCAB
    if any(word in lower for word in ("adam", "multi_tensor_apply")):
        return OPTIMIZER
    if lower.startswith("triton_"):  # inductor's fused pointwise and reduction kernels
        return ELEMENTWISE
    if any(word in lower for word in ("memcpy", "memset", "copy", "cat_", "index", "gather", "scatter")):
        return COPIES
    return ELEMENTWISE


def event_category(event: Any) -> str | None:
    """The category of a profiler event: that of its outermost ancestor (itself included) in a
    :data:`STRONG` category, so the matmuls of a math-path attention stay attention and the
    ``aten::_foreach_*`` ops of AdamW stay optimizer; else the innermost category found (None: none)."""
    inner = strong = None
    node = event
    while node is not None:
        category = op_category(node.name)
        inner = inner or category
        strong = category if category in STRONG else strong
        node = node.cpu_parent
    return strong or inner


@dataclass
class Breakdown:
    """One profiled step: ``ms`` per category, their ``share`` (% of ``total_ms``, summing to 100)."""

    name: str
    total_ms: float
    ms: dict[str, float]
    host_sync_ms: float = 0.0  # CUDA: CPU time spent waiting in synchronize calls (inside the rows, not added)
    host_syncs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def share(self) -> dict[str, float]:
        return {k: 100.0 * v / self.total_ms if self.total_ms > 0 else 0.0 for k, v in self.ms.items()}

    def table(self) -> str:
        lines = ["| category | ms | share of step |", "| --- | ---: | ---: |"]
        for category, ms in self.ms.items():
            lines.append(f"| {category} | {ms:.3f} | {self.share[category]:.1f}% |")
        lines.append(f"| **total** | **{self.total_ms:.3f}** | **{sum(self.share.values()):.1f}%** |")
        if self.host_syncs:
            lines.append(f"\nHost: {self.host_syncs} synchronize calls, {self.host_sync_ms:.3f} ms of CPU time "
                         "waiting in them (the GPU rows above run meanwhile).")
        return "\n".join(lines)


def breakdown(events: Iterable[Any], wall_ms: float, cuda: bool, name: str = "step") -> Breakdown:
    """Split a profiled step of ``wall_ms`` into :data:`CATEGORIES` from the profiler's ``events``
    (``prof.events()``: objects with ``name``, ``device_type``, ``cpu_parent``, ``self_cpu_time_total``,
    ``time_range``, ``id``, ``linked_correlation_id``).

    CPU: the self CPU time of every CPU event by :func:`event_category`; what no event claims (and
    wall time outside events: Python, the profiler) goes to "other". CUDA: every
    kernel's time goes to the category of the op that launched it (by correlation id), else to
    :func:`kernel_category` of its name; the wall time no kernel covers is "GPU idle"."""
    events = list(events)
    ms = {c: 0.0 for c in CATEGORIES if cuda or c != IDLE}
    host_sync_us, host_syncs = 0.0, 0
    if not cuda:
        for e in events:
            if e.device_type == DeviceType.CPU:
                ms[event_category(e) or OTHER] += e.self_cpu_time_total / 1e3
        total = max(wall_ms, sum(ms.values()))
        ms[OTHER] += total - sum(ms.values())  # untraced time: Python between ops, the profiler itself
        return Breakdown(name, total, ms)
    launchers = {e.id: e for e in events if e.device_type == DeviceType.CPU and not e.linked_correlation_id}
    intervals = []
    for e in events:
        if e.device_type == DeviceType.CPU:
            if "synchronize" in e.name.lower():
                host_sync_us += e.time_range.elapsed_us()
                host_syncs += 1
            continue
        start, end = e.time_range.start, e.time_range.end
        if end <= start or getattr(e, "is_user_annotation", False):  # a record_function's range on the GPU timeline
            continue
        op = launchers.get(e.linked_correlation_id)
        category = (event_category(op) if op is not None else None) or kernel_category(e.name)
        ms[category] += (end - start) / 1e3
        intervals.append((start, end))
    busy_us, reach = 0.0, -math.inf  # the union of kernel intervals (streams may overlap)
    for start, end in sorted(intervals):
        busy_us += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    ms[IDLE] = max(0.0, wall_ms - busy_us / 1e3)
    # total: the wall time, plus the time of any kernels that ran side by side on two streams (counted twice)
    return Breakdown(name, sum(ms.values()), ms, host_sync_ms=host_sync_us / 1e3, host_syncs=host_syncs)


def profile_once(step: Callable[[], Any], device: str, name: str) -> Breakdown:
    """Run ``step`` once under torch.profiler and split its time (:func:`breakdown`)."""
    cuda = device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sync(device)
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        with record_function(f"profile_step: {name}"):
            step()
        sync(device)
        wall_ms = (time.perf_counter() - t0) * 1e3
    return breakdown(prof.events(), wall_ms, cuda, name)


def median_ms(step: Callable[[], Any], device: str, repeat: int) -> float:
    """Median wall time of ``step`` over ``repeat`` runs (each synchronised: the step's own time)."""
    times = []
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _cpu_attention_flops() -> dict[Any, Callable[..., int]]:
    """FlopCounterMode knows the CUDA attention kernels and the math path (its bmms), not the CPU flash
    kernel: the same count for it (the functions get the tensors' shapes)."""
    aten, mapping = torch.ops.aten, {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = (
            lambda q, k, v, *args, out_shape=None, **kwargs: flop_counter.sdpa_flop_count(q, k, v))
        mapping[aten._scaled_dot_product_flash_attention_for_cpu_backward] = (
            lambda grad, q, k, v, *args, out_shape=None, **kwargs: flop_counter.sdpa_backward_flop_count(grad, q, k, v))
    return mapping


def count_flops(step: Callable[[], Any]) -> int:
    """Model FLOPs of one ``step`` (matmuls, convolutions, attention; what FlopCounterMode knows)."""
    with flop_counter.FlopCounterMode(display=False, custom_mapping=_cpu_attention_flops()) as counter:
        step()
    return counter.get_total_flops()


def matmul_peak_tflops(device: str) -> tuple[float, str]:
    """Achieved TFLOP/s of a large square matmul: bf16 8192^3 on CUDA, fp32 1024^3 on CPU (about 0.1 s
    on one core). The step's TFLOP/s are a share of this."""
    n, dtype, reps = (8192, torch.bfloat16, 10) if device == "cuda" else (1024, torch.float32, 3)
    a = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):  # warm-up: allocator, kernel choice
        a @ a
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ a
    sync(device)
    seconds = (time.perf_counter() - t0) / reps
    return 2 * n**3 / seconds / 1e12, f"{'bf16' if dtype == torch.bfloat16 else 'fp32'} {n}^3 matmul"


# ------------------------------------------------------------------------------ the two steps
def train_setup(cfg: TrainConfig, device: str, batch: int, length: int,
                frames: int) -> tuple[Callable[[], None], MusicStyleTransformer]:
    """The trainer's objective, optimizer and one micro-batch step (Trainer.train_step with grad_accum 1, one
    process, no fp16 scaler) on random ids; returns ``(step, model)``."""
    tokenizer = RemiTokenizer()
    torch.manual_seed(cfg.seed)
    model = MusicStyleTransformer(cfg.model_config(tokenizer.vocab_size, tokenizer)).to(device)
    if length > model.config.max_len:
        raise UserError(f"--length {length}: longer than the model's max_len {model.config.max_len}")
    objective = TrainingObjective(model, cfg.style_loss_weight, cfg.style_temperature,
                                  pitch_token_weights(cfg, tokenizer, device), loss_chunk=cfg.loss_chunk)
    optimizer = make_optimizer(model, cfg, device)
    content, target, mel = random_batch(batch, length, length, frames, tokenizer.vocab_size, device)  # target (B, T+1)
    labels = torch.arange(batch, device=device) % max(1, batch // 2)  # pairs share a style: the style loss runs
    n_tokens = float(target[:, 1:].ne(model.config.pad_id).sum())
    amp = torch.autocast(device, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext()
    clip = cfg.clip if cfg.clip > 0 else math.inf
    model.train()

    def step() -> None:
        with amp:
            tokens, style = objective(content, mel, target, labels)  # (token CE sum, style loss)
            loss = tokens / n_tokens + cfg.style_loss_weight * style
        loss.backward()
        with record_function("clip_grad_norm_"):
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        float(tokens.detach()), float(grad_norm)  # the trainer reads both every step (host syncs on CUDA)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)  # the trainer waits for the step's end on CUDA (to time it)

    return step, model


def decode_setup(cfg: TrainConfig, device: str, batch: int, length: int, frames: int, new_tokens: int,
                 compile_: bool, cuda_graph: bool) -> Decoder:
    """A Decoder for a random model of the config (bf16 weights for a bf16 run on CUDA, as bench_model):
    ``batch`` rows of ``length`` content tokens, room for ``new_tokens`` (at most max_len - 1)."""
    tokenizer = RemiTokenizer()
    torch.manual_seed(cfg.seed)
    dtype = torch.bfloat16 if device == "cuda" and cfg.precision == "bf16" else torch.float32
    model = MusicStyleTransformer(cfg.model_config(tokenizer.vocab_size, tokenizer)).to(device, dtype=dtype).eval()
    content, _, mel = random_batch(batch, length, 1, frames, tokenizer.vocab_size, device, seed=1)
    new = min(new_tokens, model.config.max_len - 1)
    return Decoder(model, content, mel.to(dtype), max_new_tokens=new, grammar=bench_grammar(tokenizer.vocab_size),
                   cuda_graph=cuda_graph, compile=compile_)  # the benchmark grammar never allows EOS: no early end


def headline(flops: int, step_ms: float, peak: tuple[float, str]) -> str:
    tflops = flops / (step_ms / 1e3) / 1e12
    return (f"{flops / 1e9:.3f} GFLOP in {step_ms:.3f} ms (unprofiled median) = {tflops:.4f} TFLOP/s, "
            f"{100 * tflops / peak[0]:.1f}% of the measured {peak[1]} peak ({peak[0]:.3f} TFLOP/s)")


# ------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="where to run (default auto: cuda when there is one, else cpu)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="model and training preset (default: tiny on CPU, base on CUDA)")
    parser.add_argument("--config", default=None,
                        help="a train config (.json/.yaml, e.g. data_samples/checkpoints/demo_v2/train_config.json): "
                             "its model and losses instead of --preset's")
    parser.add_argument("--batch", type=int, default=None, help="sequences per micro-batch (default: 4 CPU, 32 CUDA)")
    parser.add_argument("--length", type=int, default=None,
                        help="content and target tokens per sequence (default: 256 CPU, 1024 CUDA); "
                             "the decode step decodes into a cache of this many positions")
    parser.add_argument("--decode-batch", type=int, default=1, help="rows decoded side by side (default: 1)")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default=None,
                        help="bf16: autocast, as the trainer's precision bf16 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the blocks (training) and the decode step (slow to start on CPU)")
    parser.add_argument("--loss-chunk", type=int, default=0,
                        help="TrainConfig.loss_chunk: cross-entropy over this many target tokens at a time (0: off)")
    parser.add_argument("--pitch-loss-weight", type=float, default=None,
                        help="TrainConfig.pitch_loss_weight (default: the preset's or config's)")
    parser.add_argument("--warmup", type=int, default=None, help="steps before measuring (default: 2 CPU, 3 CUDA)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="unprofiled steps whose median gives the step time (default: 3 CPU, 10 CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="also write the tables to this Markdown file")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Breakdown]:
    """Profile one training step and one decode step; print (and with ``--out`` write) the tables.

        >>> results = main(["--device", "cpu", "--batch", "1", "--length", "16"])  # doctest: +SKIP
        >>> results["train"].share["matmul / linear / conv"]  # doctest: +SKIP
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    for name in ("batch", "length", "decode_batch", "threads", "repeat"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')}: expected an integer >= 1, got {value}")
    if args.warmup is not None and args.warmup < 0:
        parser.error(f"--warmup: expected an integer >= 0, got {args.warmup}")
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = settings(device, smoke=False)  # bench_model's training sizes for this device
    batch, length = args.batch or sizes["train_B"], args.length or sizes["train_T"]
    warmup = args.warmup if args.warmup is not None else (3 if device == "cuda" else 2)
    repeat = args.repeat or (10 if device == "cuda" else 3)
    dtype = args.dtype or ("bf16" if device == "cuda" else "fp32")
    overrides = {"loss_chunk": args.loss_chunk, "precision": dtype, "device": device, "compile": args.compile}
    if args.pitch_loss_weight is not None:
        overrides["pitch_loss_weight"] = args.pitch_loss_weight
    try:
        base = (TrainConfig.load(args.config) if args.config
                else TrainConfig.preset(args.preset or ("base" if device == "cuda" else "tiny")))
        cfg = base.with_overrides(overrides)
    except UserError as err:  # names the bad key, e.g. "TrainConfig.loss_chunk: expected an integer >= 0"
        parser.error(str(err))

    peak = matmul_peak_tflops(device)
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine() or "cpu"
    try:
        train_step, model = train_setup(cfg, device, batch, length, sizes["mel_frames"])
    except UserError as err:
        parser.error(str(err))
    train_flops = count_flops(train_step)  # eager, before any compile: the model's FLOPs
    if args.compile:
        model.compile_blocks()  # as Trainer does with TrainConfig.compile
    for _ in range(warmup):
        train_step()
    with Peak(device) as memory:
        train_ms = median_ms(train_step, device, repeat)
    train = profile_once(train_step, device, "training step")
    train.extra.update(step_ms=train_ms, flops=train_flops, peak_gib=memory.gib)
    params = model.num_parameters()
    del train_step, model
    if device == "cuda":
        torch.cuda.empty_cache()

    steps = warmup + 2 + repeat + 1  # decode steps taken: warm-up (+2 to compile), timing, the profiled one
    decode_args = (cfg, device, args.decode_batch, length, sizes["mel_frames"], max(length, steps), args.compile)
    decoder = decode_setup(*decode_args, cuda_graph=False)  # eager launches: the profiler sees each kernel's op
    with torch.no_grad():  # as Decoder.step runs it
        decode_flops = count_flops(lambda: decoder.model.decode_step(decoder.token, decoder.pos, decoder.cache))
    decoder.reset()  # forget the position that step filled
    for _ in range(warmup + (2 if args.compile else 0)):
        decoder.step()
    decode_ms = median_ms(decoder.step, device, repeat)
    decode = profile_once(decoder.step, device, "decode step")
    decode.extra.update(step_ms=decode_ms, flops=decode_flops, mode=decoder.mode)
    if device == "cuda":  # what generation runs: the same step replayed as a CUDA graph
        graphed = decode_setup(*decode_args, cuda_graph=True)
        for _ in range(warmup):
            graphed.step()
        decode.extra.update(graph_ms=median_ms(graphed.step, device, repeat), graph_mode=graphed.mode)
        del graphed

    mode = dtype + (" autocast" if dtype == "bf16" else "") + (", compiled" if args.compile else ", eager")
    head = (f"## profile_step: {name} ({device}), torch {torch.__version__}, {torch.get_num_threads()} threads\n\n"
            f"{'config ' + args.config if args.config else 'preset ' + cfg.model_preset}, "
            f"{params / 1e6:.2f}M params, vocab {RemiTokenizer().vocab_size}; training batch {batch} x {length} "
            f"(content {length}, mel {sizes['mel_frames']} frames); {mode}; loss_chunk {cfg.loss_chunk}, "
            f"pitch_loss_weight {cfg.pitch_loss_weight}, style_loss_weight {cfg.style_loss_weight}; "
            f"{warmup} warm-up steps, median of {repeat}; Python {platform.python_version()}")
    train_text = (f"### Training step (forward, backward, clip, AdamW)\n\n"
                  f"{headline(train_flops, train_ms, peak)}; profiled step {train.total_ms:.3f} ms"
                  + (f"; peak memory {train.extra['peak_gib']:.3f} GiB above weights and optimizer state"
                     + (" (CPU: rise of the peak RSS, approximate)" if device == "cpu" else "")
                     if math.isfinite(train.extra["peak_gib"]) else "") + f"\n\n{train.table()}")
    decode_text = (f"### Decode step (Decoder.step: KV-cached decode_step + grammar-masked sampling)\n\n"
                   f"batch {args.decode_batch}, cache of {decoder.cache.length} positions, content {length}; "
                   f"{decoder.mode}: {headline(decode_flops, decode_ms, peak)}; profiled step "
                   f"{decode.total_ms:.3f} ms"
                   + (f"; as a CUDA graph ({decode.extra['graph_mode']}): {decode.extra['graph_ms']:.3f} ms"
                      if "graph_ms" in decode.extra else "") + f"\n\n{decode.table()}")
    text = "\n\n".join([head, train_text, decode_text]) + "\n"
    print(text, flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    return {"train": train, "decode": decode}


if __name__ == "__main__":
    main()
