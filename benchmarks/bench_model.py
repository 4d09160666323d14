#!/usr/bin/env python
"""Model benchmark: the seed design and mstoolkit's model, measured in the same run on the same device.

    PYTHONPATH=. python benchmarks/bench_model.py                 # full run (GPU if present, else CPU)
    PYTHONPATH=. python benchmarks/bench_model.py --smoke         # tiny sizes, well under a minute on CPU
    PYTHONPATH=. python benchmarks/bench_model.py --sections train,decode --skip-seed --device cpu

Needs only torch and numpy (plus this repository on the path; the script adds it itself).
Sections:
  train   target tokens/s and peak memory at `base`, fp32 (TF32 off) and bf16 autocast, with and without
          torch.compile (ours: per-block "regional" compile; the seed: whole model, as in its anchor)
  decode  tokens/s at batch 1 and 32 and seconds per minute of music (2,350 tokens), `tiny` and `base`;
          ours: KV cache, grammar-constrained sampling in the step, CUDA graph (+ torch.compile) on GPU
  switch  style-switch latency of a bar-by-bar stream: new reference -> first token, -> end of first bar
  memory  peak memory of a training step at 1024 and 4096 tokens, with and without activation checkpointing
  deploy  (CPU) weight sizes fp32 / fp16 / int8 dynamic, change in logits, CPU decoding speed fp32 vs int8
Prints one JSON line per measurement as it finishes, then one markdown table. With $OUT set, also
writes $OUT/bench_model.json. Jobs run most-important first; past --budget-s the rest are skipped.
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # the repo (mstoolkit) and benchmarks/ (seed_model): no install needed

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import seed_model  # noqa: E402
from mstoolkit.checkpoint import quantize_int8, state_size_bytes  # noqa: E402
from mstoolkit.generate import Decoder, StyleStream  # noqa: E402
from mstoolkit.model import ModelConfig, MusicStyleTransformer  # noqa: E402

MINUTE = 2350  # REMI tokens in one minute of music (Bach chorales, 12 positions per beat)
SECTIONS = ("train", "decode", "switch", "memory", "deploy")
NOTES_PER_BAR = 16  # synthetic grammar: a bar = Bar + 16 x (Position, Pitch, Velocity, Duration) = 65 tokens


# ------------------------------------------------------------------------------ setup
def bench_grammar(vocab: int):
    """A REMI-like DFA for a random model: 0 PAD, 1 BOS, 2 EOS (never allowed: fixed-length runs), 3 Bar,
    then Position x48, Pitch x128, Velocity x32, Duration x64; a bar holds 1..16 notes."""
    pos, pitch, vel, dur = (4, 52), (52, 180), (180, 212), (212, 276)
    if vocab < dur[1]:
        raise SystemExit(f"--vocab must be >= {dur[1]} for the benchmark grammar")
    n = NOTES_PER_BAR
    between = lambda k: 1 + k  # noqa: E731  state "k notes done in this bar", k = 0..n
    after = lambda kind, k: 2 + n + 3 * k + kind  # noqa: E731  kind 0: Position, 1: Pitch, 2: Velocity
    ns = np.full((2 + n + 3 * n, vocab), -1, dtype=np.int32)
    ns[0, 3] = between(0)
    for k in range(n + 1):
        if k < n:
            ns[between(k), pos[0]:pos[1]] = after(0, k)
            ns[after(0, k), pitch[0]:pitch[1]] = after(1, k)
            ns[after(1, k), vel[0]:vel[1]] = after(2, k)
            ns[after(2, k), dur[0]:dur[1]] = between(k + 1)
        if k > 0:
            ns[between(k), 3] = between(0)
    return type("BenchGrammar", (), dict(next_state=ns, start_state=0, accepting=np.zeros(len(ns), dtype=bool)))


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def free(device: str, reset_compiler: bool = False) -> None:
    """Release memory; ``reset_compiler`` also drops torch.compile caches (only between training runs:
    a captured CUDA graph may still use compiled kernels)."""
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    if reset_compiler:
        torch._dynamo.reset()


class Peak:
    """Peak memory a block adds: CUDA allocated bytes over what was allocated before it, or on CPU the
    rise of the process's peak RSS (approximate: the C allocator may reuse memory it already holds)."""

    def __init__(self, device: str) -> None:
        self.device = device

    def __enter__(self) -> "Peak":
        gc.collect()
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            try:
                ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed memory back, so the RSS baseline is honest
                Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
                self.base = _proc_status("VmRSS")
            except OSError:  # not Linux/glibc: no CPU peak
                self.base = None
        return self

    def __exit__(self, *exc) -> None:
        if self.base is None:
            self.gib = float("nan")
            return
        peak = torch.cuda.max_memory_allocated() if self.device == "cuda" else _proc_status("VmHWM")
        self.gib = (peak - self.base) / 2**30


def _proc_status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {key}")


def timed(fn) -> tuple[float, float]:
    """Wall seconds and CPU seconds of this process for ``fn()``."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def random_batch(B: int, S: int, T: int, frames: int, vocab: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, vocab, (B, S), generator=g)
    tgt = torch.randint(3, vocab, (B, T + 1), generator=g)
    mel = torch.randn(B, 128, frames, generator=g) * 20 - 40
    return src.to(device), tgt.to(device), mel.to(device)


# ------------------------------------------------------------------------------ measurements
def train(ctx, design: str, dtype: str, compile_: bool, attention: str = "default",
          conditioning: str = "concat") -> dict:
    """Training steps/s at `base`: AdamW (fused on GPU for ours; the seed's default as in its anchor)."""
    dev, cfg = ctx.device, ctx.cfg
    B, T, frames = cfg["train_B"], cfg["train_T"], cfg["mel_frames"]
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32
    src, tgt, mel = random_batch(B, T, T, frames, ctx.vocab, dev)
    peak = Peak(dev).__enter__()  # weights, gradients, optimizer state and activations
    if design == "seed":
        model = seed_model.MusicStyleTransformer(ctx.vocab).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
        call = torch.compile(model) if compile_ else model

        def loss_fn():
            logits = call(src, mel, tgt[:, :-1])
            return F.cross_entropy(logits.reshape(-1, ctx.vocab).float(), tgt[:, 1:].reshape(-1))
    else:
        cfg_model = ModelConfig.preset("base", vocab_size=ctx.vocab, conditioning=conditioning)
        model = MusicStyleTransformer(cfg_model).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-5, fused=dev == "cuda")
        if compile_:
            model.compile_blocks()

        def loss_fn():
            return model(src, mel, tgt[:, :-1], tgt[:, 1:])[1]

    amp = torch.autocast(dev, dtype=torch.bfloat16, enabled=dtype == "bf16")

    def step():
        with amp, attention_backend(attention):
            loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    for _ in range(cfg["warm"]):
        step()
    sync(dev)
    warm_s = time.perf_counter() - t0
    if dev == "cuda":  # one timing over all steps: no host sync between them
        t0 = time.perf_counter()
        for _ in range(cfg["steps"]):
            step()
        sync(dev)
        dt = (time.perf_counter() - t0) / cfg["steps"]
    else:  # the median step: robust to other processes on a shared CPU; also in CPU time (see decode)
        times = [timed(step) for _ in range(cfg["steps"])]
        dt, cpu_dt = statistics.median(t for t, _ in times), statistics.median(c for _, c in times)
    peak.__exit__()
    params = sum(p.numel() for p in model.parameters())
    model = opt = call = None  # closures see these cells: drops every reference
    free(dev, reset_compiler=compile_)
    row = dict(tgt_tok_per_s=round(B * T / dt), step_ms=round(dt * 1e3, 2), peak_gib=round(peak.gib, 2),
               warmup_s=round(warm_s, 1), B=B, T=T, params_M=round(params / 1e6, 2))
    if dev == "cpu" and torch.get_num_threads() == 1:  # CPU time = wall time on a core of one's own
        row["tgt_tok_per_cpu_s"] = round(B * T / cpu_dt)
    return row


def attention_backend(name: str):
    """`default`: PyTorch's own SDPA choice; `cudnn`: cuDNN attention first (Hopper kernels)."""
    from contextlib import nullcontext

    if name == "default":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    return sdpa_kernel(order, set_priority=True)


def our_decoder(ctx, preset: str, B: int, n_new: int, mode: str) -> Decoder:
    """A Decoder for a random `preset` model (bf16 weights on GPU), built once per (preset, B, mode, n_new)."""
    key = (preset, B, mode, n_new)
    if key not in ctx.decoders:
        dev = ctx.device
        torch.manual_seed(0)
        model = MusicStyleTransformer(ModelConfig.preset(preset, vocab_size=ctx.vocab)).eval()
        model = model.to(dev, dtype=torch.bfloat16 if dev == "cuda" else torch.float32)
        src, _, mel = random_batch(B, ctx.cfg["decode_S"], 1, ctx.cfg["ref_frames"], ctx.vocab, dev, seed=1)
        t0 = time.perf_counter()
        decoder = Decoder(model, src, mel[0], max_new_tokens=n_new, temperature=1.0, grammar=ctx.grammar,
                          bar_ids=[3], cuda_graph="graph" in mode, compile=mode.startswith("compiled"))
        sync(dev)
        decoder.setup_s = time.perf_counter() - t0
        ctx.decoders[key] = decoder
    return ctx.decoders[key]


def decode(ctx, preset: str, B: int, n_new: int, mode: str, keep: bool = False) -> dict:
    """Ours: sample n_new tokens per row (grammar mask, temperature 1) after a few warm-up steps.
    ``keep``: leave the decoder (with its CUDA graph) for the switch section."""
    decoder = our_decoder(ctx, preset, B, n_new, mode)
    for _ in range(3):
        decoder.step()
    decoder.reset()
    sync(ctx.device)
    t0, c0 = time.perf_counter(), time.process_time()
    decoder.run()
    sync(ctx.device)
    dt, cpu_dt = time.perf_counter() - t0, time.process_time() - c0
    mode_used, setup_s = decoder.mode, decoder.setup_s
    assert decoder.n == n_new, "the benchmark grammar never allows EOS"
    if not keep:
        del ctx.decoders[(preset, B, mode, n_new)], decoder
        free(ctx.device)
    rate = B * n_new / dt
    row = dict(tok_per_s=round(rate, 1), s_per_min_music=round(MINUTE * B / rate, 3), mode_used=mode_used,
               setup_s=round(setup_s, 1), B=B, S=ctx.cfg["decode_S"], new_tokens=n_new)
    if ctx.device == "cpu" and torch.get_num_threads() == 1:  # on a shared machine: per second of CPU time
        row["tok_per_cpu_s"] = round(B * n_new / cpu_dt, 1)
    return row


def decode_seed(ctx, B: int, n_new: int) -> dict:
    """The seed's loop (no KV cache), fp32, as in its anchor."""
    dev = ctx.device
    torch.manual_seed(0)
    model = seed_model.MusicStyleTransformer(ctx.vocab).to(dev).eval()
    src, _, mel = random_batch(B, ctx.cfg["decode_S"], 1, ctx.cfg["ref_frames"], ctx.vocab, dev, seed=1)
    seed_model.seed_generate(model, src, mel, 2)  # warm-up
    sync(dev)
    t0 = time.perf_counter()
    seed_model.seed_generate(model, src, mel, n_new)
    sync(dev)
    dt = time.perf_counter() - t0
    del model
    free(dev)
    rate = B * n_new / dt
    return dict(tok_per_s=round(rate, 1), s_per_min_music=round(MINUTE * B / rate, 2), mode_used="fp32, no cache",
                B=B, S=ctx.cfg["decode_S"], new_tokens=n_new,
                note=f"first {n_new} tokens only; it slows down as the prefix grows")


def switch(ctx, preset: str, mode: str) -> dict:
    """Stream bar by bar and switch the reference at bar boundaries; medians over the switches."""
    n_switch = ctx.cfg["n_switch"]
    decoder = our_decoder(ctx, preset, 1, ctx.cfg["switch_new"], mode)
    decoder.reset()
    live = StyleStream(decoder)
    next(live)
    results = []
    for i in range(n_switch):
        mel = torch.randn(128, ctx.cfg["ref_frames"], generator=torch.Generator().manual_seed(100 + i)) * 20 - 40
        bar = live.send(mel.to(ctx.device))
        results.append(dict(live.last_switch, bar_tokens=len(bar)))
    med = {k: round(statistics.median(r[k] for r in results), 2) for k in results[0]}
    mode_used = decoder.mode
    del ctx.decoders[(preset, 1, mode, ctx.cfg["switch_new"])], decoder, live
    free(ctx.device)
    return dict(encode_ms=med["encode"], first_token_ms=med["first_token"], first_bar_ms=med["first_bar"],
                bar_tokens=med["bar_tokens"], switches=n_switch, S=ctx.cfg["decode_S"],
                ref_frames=ctx.cfg["ref_frames"], mode_used=mode_used)


def memory(ctx, design: str, T: int, checkpointing: bool) -> dict:
    """One training step (forward + backward) at `base`: peak memory and time."""
    dev, B = ctx.device, ctx.cfg["mem_B"]
    torch.manual_seed(0)
    src, tgt, mel = random_batch(B, T, T, ctx.cfg["mel_frames"], ctx.vocab, dev)
    peak = Peak(dev).__enter__()  # weights, gradients and activations (no optimizer)
    if design == "seed":
        model = seed_model.MusicStyleTransformer(ctx.vocab).to(dev)

        def loss_fn():
            logits = model(src, mel, tgt[:, :-1])
            return F.cross_entropy(logits.reshape(-1, ctx.vocab).float(), tgt[:, 1:].reshape(-1))
    else:
        cfg = ModelConfig.preset("base", vocab_size=ctx.vocab, max_len=max(4096, T),
                                 activation_checkpointing=checkpointing)
        model = MusicStyleTransformer(cfg).to(dev)

        def loss_fn():
            return model(src, mel, tgt[:, :-1], tgt[:, 1:])[1]

    amp = torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda")

    def step():
        with amp:
            loss = loss_fn()
        loss.backward()
        model.zero_grad(set_to_none=True)

    if dev == "cuda":
        step()  # warm-up (allocator, kernels)
        sync(dev)
    t0 = time.perf_counter()
    step()
    sync(dev)
    dt = time.perf_counter() - t0
    peak.__exit__()
    del model
    free(dev)
    return dict(peak_gib=round(peak.gib, 3), step_ms=round(dt * 1e3, 1), tgt_tok_per_s=round(B * T / dt),
                B=B, T=T, dtype="bf16" if dev == "cuda" else "fp32")


def deploy(ctx, preset: str) -> dict:
    """fp16 checkpoint and int8 dynamic quantization (CPU): sizes, change in logits, CPU decoding speed."""
    torch.manual_seed(0)
    model = MusicStyleTransformer(ModelConfig.preset(preset, vocab_size=ctx.vocab, dropout=0.0)).eval()
    src, tgt, mel = random_batch(2, ctx.cfg["deploy_T"], ctx.cfg["deploy_T"], 64, ctx.vocab, "cpu")
    with torch.no_grad():
        ref = model(src, mel, tgt[:, :-1])[0]
        half = copy.deepcopy(model).half().float()  # what loading an fp16 checkpoint gives
        d_half = (half(src, mel, tgt[:, :-1])[0] - ref).abs().max().item()
        int8 = quantize_int8(model)
        out8 = int8(src, mel, tgt[:, :-1])[0]
    row = dict(fp32_MiB=state_size_bytes(model) / 2**20,
               fp16_MiB=sum(v.numel() * 2 for v in model.state_dict().values()) / 2**20,
               int8_MiB=state_size_bytes(int8) / 2**20, fp16_max_abs_dlogit=d_half,
               int8_max_abs_dlogit=(out8 - ref).abs().max().item(), logit_range=(ref.max() - ref.min()).item(),
               int8_top1_agreement=(out8.argmax(-1) == ref.argmax(-1)).float().mean().item())
    try:  # the file on disk, when safetensors is installed
        from mstoolkit.checkpoint import WEIGHTS_NAME, save_pretrained

        with tempfile.TemporaryDirectory() as tmp:
            for dtype in (None, torch.float16):
                save_pretrained(model, Path(tmp) / str(dtype), dtype=dtype)
                size = (Path(tmp) / str(dtype) / WEIGHTS_NAME).stat().st_size / 2**20
                row["file_fp16_MiB" if dtype else "file_fp32_MiB"] = size
    except ImportError:
        pass
    n_new = ctx.cfg["deploy_new"][preset]
    src1, _, mel1 = random_batch(1, ctx.cfg["decode_S"], 1, 64, ctx.vocab, "cpu", seed=1)
    for name, m in (("fp32", model), ("int8", int8)):
        decoder = Decoder(m, src1, mel1[0], max_new_tokens=n_new, grammar=ctx.grammar, cuda_graph=False)
        t0 = time.perf_counter()
        decoder.run()
        row[f"cpu_decode_{name}_tok_per_s"] = n_new / (time.perf_counter() - t0)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


# ------------------------------------------------------------------------------ plan and table
def settings(device: str, smoke: bool) -> dict:
    if smoke:
        return dict(train_B=1, train_T=32, mel_frames=32, warm=1, steps=1, decode_S=64, ref_frames=64,
                    decode={("tiny", 1): 64, ("tiny", 32): 8, ("base", 1): 16, ("base", 32): 4},
                    seed_decode={1: 8, 32: 2}, switch_new=400, n_switch=2, mem_B=1, mem_T=(32, 64), seed_mem_T=64,
                    deploy_T=16, deploy_new={"tiny": 16, "base": 4})
    if device == "cuda":
        return dict(train_B=32, train_T=1024, mel_frames=256, warm=3, steps=10, decode_S=1024, ref_frames=431,
                    decode={("tiny", 1): MINUTE, ("tiny", 32): MINUTE, ("base", 1): MINUTE, ("base", 32): MINUTE},
                    seed_decode={1: 512, 32: 64}, switch_new=MINUTE, n_switch=5, mem_B=8, mem_T=(1024, 4096),
                    seed_mem_T=4096,
                    deploy_T=128, deploy_new={"tiny": 512, "base": 128})
    return dict(train_B=4, train_T=256, mel_frames=128, warm=1, steps=5, decode_S=512, ref_frames=431,
                decode={("tiny", 1): MINUTE, ("tiny", 32): 128, ("base", 1): 128, ("base", 32): 16},
                seed_decode={1: 32, 32: 4}, switch_new=600, n_switch=3, mem_B=1, mem_T=(1024, 4096),
                seed_mem_T=1024,  # on CPU the seed at 4096 tokens needs > 24 GB (math attention: dropout 0.1)
                deploy_T=128, deploy_new={"tiny": 512, "base": 64})


def plan(ctx, sections: list[str], skip_seed: bool, compile_: bool) -> list[tuple[str, dict, callable]]:
    """Jobs in the order they run: the headline numbers first, so a budget cut drops the least useful."""
    gpu, cfg = ctx.device == "cuda", ctx.cfg
    fast = "compiled+graph" if gpu and compile_ else ("graph" if gpu else "eager")
    jobs = []

    def add(section, label, fn, *args):
        if section in sections and not (skip_seed and label.get("design") == "seed"):
            jobs.append((section, label, lambda: fn(ctx, *args)))

    def train_job(design, dtype, comp, attention="default", conditioning="concat"):
        mode = (dtype + ("+compile" if comp else "") + ("+cudnn-attn" if attention != "default" else "")
                + (f" ({conditioning})" if conditioning != "concat" else ""))
        add("train", dict(design=design, size="base", mode=mode), train, design, dtype, comp, attention, conditioning)

    def decode_job(preset, B, mode, keep=False):
        add("decode", dict(design="ours", size=preset, mode=mode, B=B), decode, preset, B,
            cfg["decode"][(preset, B)], mode, keep)

    if gpu and compile_:
        train_job("ours", "bf16", True)
        train_job("ours", "bf16", True, attention="cudnn")
        train_job("seed", "bf16", True)
    for preset in ("base", "tiny"):  # the switch section reuses these decoders when the sizes agree
        decode_job(preset, 1, fast, keep="switch" in sections and cfg["decode"][(preset, 1)] == cfg["switch_new"])
    for preset in ("base", "tiny"):
        add("switch", dict(design="ours", size=preset, mode=fast), switch, preset, fast)
    for dtype in ("bf16", "fp32"):
        for design in ("ours", "seed"):
            train_job(design, dtype, False)
    train_job("ours", "bf16", False, conditioning="adaln")  # the other conditioning: its cost
    if gpu and compile_:
        for preset in ("base", "tiny"):
            decode_job(preset, 1, "graph")  # the same step without torch.compile
    for preset in ("base", "tiny"):
        decode_job(preset, 32, "graph" if gpu else "eager")
    for B in (1, 32):
        add("decode", dict(design="seed", size="base", mode="fp32", B=B), decode_seed, B, cfg["seed_decode"][B])
    for T in cfg["mem_T"]:
        for design, ckpt in (("ours", False), ("ours", True), ("seed", False)):
            if design == "seed" and T > cfg["seed_mem_T"]:
                continue
            add("memory", dict(design=design, size="base", mode="checkpointing" if ckpt else "plain", T=T),
                memory, design, T, ckpt)
    for preset in ("tiny", "base"):
        add("deploy", dict(design="ours", size=preset, mode="cpu"), deploy, preset)
    if compile_ and (gpu or ctx.cpu_compile):
        train_job("ours", "fp32", True)
        if not gpu:
            train_job("ours", "bf16", True)
            decode_job("tiny", 1, "compiled")  # the step compiled by inductor's C++ backend
    return jobs


def fmt(x, unit=""):
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M{unit}"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k{unit}"
    return f"{x:,.1f}{unit}" if x < 100 else f"{x:,.0f}{unit}"


def table(rows: list[dict]) -> str:
    order = {s: i for i, s in enumerate(SECTIONS)}
    seed_best = max((r.get("tgt_tok_per_s", 0) for r in rows if r["section"] == "train" and r["design"] == "seed"),
                    default=0)
    lines = ["| section | design | size | mode | shape | throughput | time | memory | notes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = sorted(rows, key=lambda r: (order[r["section"]], r.get("T", 0), r["design"] != "seed", r["size"],
                                       r.get("B", 0), r["mode"]))
    for r in rows:
        s, thr, tim, mem, notes = r["section"], "-", "-", "-", ""
        shape = ""
        if "error" in r or "skipped" in r:
            notes = r.get("error") or r["skipped"]
        elif s == "train":
            shape = f"{r['B']}x{r['T']}"
            thr, tim = fmt(r["tgt_tok_per_s"], " tgt tok/s"), f"{r['step_ms']:.1f} ms/step"
            mem = f"{r['peak_gib']:.2f} GiB"
            notes = f"{r['params_M']}M params; first {r['warmup_s']} s (warm-up, compile)"
            if r["design"] == "ours" and seed_best:
                notes += f"; {r['tgt_tok_per_s'] / seed_best:.2f}x the seed's best"
            if "tgt_tok_per_cpu_s" in r:
                notes += f"; {fmt(r['tgt_tok_per_cpu_s'])} per CPU-second"
        elif s == "decode":
            shape = f"B={r['B']}, S={r['S']}, {r['new_tokens']} new"
            thr, tim = fmt(r["tok_per_s"], " tok/s"), f"{r['s_per_min_music']:.2f} s per min of music"
            notes = r["mode_used"] + (f"; setup {r['setup_s']} s" if "setup_s" in r else "")
            notes += f"; {fmt(r['tok_per_cpu_s'])} per CPU-second" if "tok_per_cpu_s" in r else ""
            notes += f"; {r['note']}" if "note" in r else ""
        elif s == "switch":
            shape = f"B=1, S={r['S']}, ref {r['ref_frames']} frames"
            tim = (f"encode {r['encode_ms']:.1f} ms; first token {r['first_token_ms']:.1f} ms; "
                   f"first bar {r['first_bar_ms']:.1f} ms")
            notes = f"median of {r['switches']} switches; bars of {r['bar_tokens']:.0f} tokens; {r['mode_used']}"
        elif s == "memory":
            shape = f"{r['B']}x{r['T']}"
            thr, tim = fmt(r["tgt_tok_per_s"], " tgt tok/s"), f"{r['step_ms']:.0f} ms/step"
            mem = f"{r['peak_gib']:.2f} GiB" + (" (peak RSS rise)" if r.get("device") == "cpu" else "")
            notes = r["dtype"] + " forward + backward"
        elif s == "deploy":
            mem = f"fp32 {r['fp32_MiB']:.1f} / fp16 {r['fp16_MiB']:.1f} / int8 {r['int8_MiB']:.1f} MiB"
            thr = (f"CPU decode fp32 {r['cpu_decode_fp32_tok_per_s']:.0f} / int8 "
                   f"{r['cpu_decode_int8_tok_per_s']:.0f} tok/s")
            notes = (f"max abs dlogit fp16 {r['fp16_max_abs_dlogit']:.1e}, int8 {r['int8_max_abs_dlogit']:.3f} "
                     f"(logit range {r['logit_range']:.1f}); int8 top-1 agreement {r['int8_top1_agreement']:.3f}")
        lines.append(f"| {s} | {r['design']} | {r['size']} | {r['mode']} | {shape} | {thr} | {tim} | {mem} | {notes} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that everything runs")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--sections", default=None,
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all; deploy only on CPU)")
    parser.add_argument("--skip-seed", action="store_true", help="measure only mstoolkit's model")
    parser.add_argument("--no-compile", action="store_true", help="skip every torch.compile measurement")
    parser.add_argument("--cpu-compile", action="store_true", help="also time torch.compile training on CPU (slow)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="skip jobs that would start after this many seconds (default: 300 on GPU, none on CPU)")
    parser.add_argument("--vocab", type=int, default=500, help="vocabulary size (the seed anchor used 500)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    sections = args.sections.split(",") if args.sections else [
        s for s in SECTIONS if s != "deploy" or device == "cpu"]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"--sections: unknown {sorted(unknown)}; choose from {SECTIONS}")
    budget = args.budget_s if args.budget_s is not None else (300.0 if device == "cuda" else float("inf"))
    ctx = argparse.Namespace(device=device, cfg=settings(device, args.smoke), vocab=args.vocab, decoders={},
                             grammar=bench_grammar(args.vocab), cpu_compile=args.cpu_compile)

    env = dict(section="env", torch=torch.__version__, python=platform.python_version(), device=device,
               name=torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
               threads=torch.get_num_threads(), cpus=os.cpu_count(), smoke=args.smoke, vocab=args.vocab,
               budget_s=budget, load_avg_start=[round(x, 2) for x in os.getloadavg()])
    if device == "cuda":
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            a @ a
        sync(device)
        t0 = time.perf_counter()
        for _ in range(10):
            a @ a
        sync(device)
        env["matmul_bf16_tflops"] = round(2 * 8192**3 / ((time.perf_counter() - t0) / 10) / 1e12, 1)
        del a
    print(json.dumps(env), flush=True)

    start, rows = time.perf_counter(), []
    for section, label, job in plan(ctx, sections, args.skip_seed, not args.no_compile):
        row = dict(section=section, **label, device=device)
        elapsed = time.perf_counter() - start
        if elapsed > budget:
            row["skipped"] = f"skipped: budget of {budget:.0f} s used"
        else:
            t0 = time.perf_counter()
            try:
                row.update(job())
            except Exception as err:  # one failed measurement must not lose the others
                row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
                traceback.print_exc(file=sys.stderr)
                ctx.decoders.clear()
                free(device)
            row["job_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)

    total = time.perf_counter() - start
    env["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\n## bench_model: {env['name']} ({device}), torch {torch.__version__}, {env['threads']} threads, "
          f"total {total:.0f} s, load average {env['load_avg_start'][0]} -> {env['load_avg_end'][0]}\n")
    print(table(rows), flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"]).mkdir(parents=True, exist_ok=True)
        Path(os.environ["OUT"], "bench_model.json").write_text(json.dumps(dict(env=env, rows=rows), indent=1))
    return rows


if __name__ == "__main__":
    main()
