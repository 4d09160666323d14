"""Live style switching: latency of 20 switches, real-time factor, memory over a long play.

    PYTHONPATH=. python benchmarks/bench_live.py                    # demo model, CPU, 2 threads
    PYTHONPATH=. python benchmarks/bench_live.py --device cuda      # on a GPU
    PYTHONPATH=. python benchmarks/bench_live.py --soak 600         # + memory over 600 s of music

Prints a markdown table: median and worst of the switches for reference -> first new-style token,
-> its audio ready (one beat rendered), and click -> audible (the wait for the next beat included),
the real-time factor of generation + rendering, late chunks, and RSS growth over the soak.
The switches run against the session's real-time clock (as a player would), one every --every s.
The soak runs the playback clock as fast as generation allows (the clock follows the newest chunk),
with a switch every 5 s of music, so 10 minutes of music take about 10 min / real-time factor.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from mstoolkit.live import LiveSession

STYLES = ["swing", "waltz", "staccato", "bossa", "straight", "arpeggio", "stride", "shuffle", "alberti"]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def switches(args) -> LiveSession:
    live = LiveSession(args.model, args.content, style="straight", seed=0, quantize=args.quantize, device=args.device)
    with live:
        for i in range(args.switches):
            live.wait_until(1.5 + args.every * i, timeout=600)
            live.switch(STYLES[i % len(STYLES)])
        live.wait_until(1.5 + args.every * args.switches + 1.5, timeout=600)
    return live


def soak(args) -> dict:
    state = {"t": -0.5}
    ends: list[float] = []
    live = LiveSession(args.model, args.content, style="straight", seed=0, device=args.device,
                       clock=lambda: state["t"], on_chunk=lambda c: ends.append(c.start + c.duration))
    samples = []
    t0 = time.perf_counter()
    with live:
        next_switch, i = 5.0, 0
        while state["t"] < args.soak:
            time.sleep(0.002)
            if ends:
                state["t"] = max(state["t"], ends[-1] - live.lookahead + 0.05)  # play as fast as it generates
                del ends[:-1]
            if state["t"] >= next_switch:
                live.switch(STYLES[i % len(STYLES)])
                next_switch, i = next_switch + 5.0, i + 1
            if not samples or state["t"] - samples[-1][0] >= 30:
                samples.append((state["t"], rss_mb()))
            if live.error:
                raise live.error
    return {"music_s": round(state["t"]), "wall_s": round(time.perf_counter() - t0), "switches": i,
            "rss_after_30s_mb": round(next((m for t, m in samples if t >= 30), samples[-1][1]), 1),
            "rss_end_mb": round(rss_mb(), 1),
            "threads_left": sum(t.name == "mstoolkit-live" for t in __import__("threading").enumerate())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="demo")
    p.add_argument("--content", default="bwv66.6")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--switches", type=int, default=20)
    p.add_argument("--every", type=float, default=1.3, help="seconds between switches")
    p.add_argument("--quantize", default="beat")
    p.add_argument("--soak", type=float, default=0, help="seconds of music for the memory measurement")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.switches:
        report_switches(args, switches(args))
    if args.soak:
        report_soak(soak(args))


def report_switches(args, live: LiveSession) -> None:
    s = live.summary()
    where = (torch.cuda.get_device_name() if args.device.startswith("cuda") else
             f"CPU ({platform.processor() or platform.machine()}, {args.threads} threads, load {os.getloadavg()[0]:.1f})")
    print(f"\nLive switching, {args.model} model, {args.content}, {where}; {s['switches']} switches, one every "
          f"{args.every} s, switch at the next {args.quantize}, {live.tempo:.0f} bpm\n")
    print("| latency after the click | median ms | worst ms |")
    print("| --- | ---: | ---: |")
    names = {"encode_ms": "new reference encoded (content re-encoded, cross-attention refilled)",
             "first_token_ms": "first new-style token", "audio_ready_ms": "its audio ready (one beat rendered)",
             "audible_ms": "audible (the wait for the next beat included)"}
    for key, name in names.items():
        print(f"| {name} | {s[key]['median']:.1f} | {s[key]['worst']:.1f} |")
    print(f"\nreal-time factor of generation + rendering: {s['realtime_factor']}x; late chunks: {s['late_chunks']}; "
          f"least time a chunk was ready before it was due: {s['min_ahead_s']} s")
    ready = [r["audio_ready_ms"] for r in live.switches]
    print(f"switches with audio ready <= 100 ms: {sum(r <= 100 for r in ready)} of {len(ready)}; "
          f"median of all: {statistics.median(ready):.1f} ms")


def report_soak(r: dict) -> None:
    print(f"\nmemory: {r['music_s']} s of music ({r['switches']} switches) in {r['wall_s']} s: RSS "
          f"{r['rss_after_30s_mb']} MB after 30 s of music -> {r['rss_end_mb']} MB at the end "
          f"(growth {r['rss_end_mb'] - r['rss_after_30s_mb']:+.1f} MB); generation threads left after stop: "
          f"{r['threads_left']}")


if __name__ == "__main__":
    main()
