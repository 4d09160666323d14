"""The `mstoolkit` command.

    $ mstoolkit tokenize data_samples/bwv66.6.mid --names
    $ mstoolkit render data_samples/bwv66.6.mid --out bwv66.6.wav
    $ mstoolkit train --config tiny --out runs/tiny --max-steps 500 --data.corpus data_samples
    $ mstoolkit transfer data_samples/bwv66.6.mid --style swing --checkpoint demo --out swing.mid --wav swing.wav
    $ mstoolkit bench --baseline identity --baseline oracle --checkpoint runs/tiny --limit 50

Every sub-command has ``--help``. Heavy libraries are imported inside each command so that
``mstoolkit --help`` answers at once.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from mstoolkit.config import TRANSFER_TEMPERATURE, UserError
from mstoolkit.shipped import DEFAULT_MODEL


class CliError(UserError):
    """A user mistake found by the command itself: printed as one line, exit status 2, no traceback."""


# What main() prints as one line (exit status 2): the user's mistakes. UserError is what the library
# raises when what it was given is wrong (a config key or value, a checkpoint or manifest file, an
# argument out of range); MidiError a file that is not MIDI; the OSErrors a path that is missing or
# unusable; FloatingPointError the trainer's stop when the loss turns NaN (NonFiniteLossError, whose
# message says what to try). Any other exception keeps its traceback: it is a bug to be seen.
def _user_mistakes() -> tuple[type[BaseException], ...]:
    from mstoolkit.piece import MidiError

    return (UserError, MidiError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
            FloatingPointError)


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return path


def _manifest_file(value: str) -> Path:
    """A StyleBench split manifest: a JSON file, or the name of a shipped one (``test_split_v1``)."""
    from mstoolkit.shipped import shipped_path

    path = Path(value)
    if path.is_file():
        return path
    if path.name == value:  # a bare name: look among the shipped manifests
        try:
            return shipped_path("stylebench", path.stem + ".json")
        except FileNotFoundError as err:
            raise argparse.ArgumentTypeError(f"no such file, nor a shipped manifest: {err}") from None
    raise argparse.ArgumentTypeError(f"no such file: {value}")


# ----------------------------------------------------------------------------- tokenize
def cmd_tokenize(args: argparse.Namespace) -> None:
    from mstoolkit.tokenizer import RemiTokenizer

    tokenizer = RemiTokenizer.load(args.tokenizer) if args.tokenizer else RemiTokenizer()
    ids = tokenizer.encode(args.midi)
    result: dict = {"file": str(args.midi), "n_tokens": len(ids), "ids": ids}
    if args.names:
        result["tokens"] = tokenizer.tokens(ids)
    text = json.dumps(result, indent=None if args.compact else 1)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote {len(ids)} tokens to {args.out}")
    else:
        print(text)


# ----------------------------------------------------------------------------- render
def cmd_render(args: argparse.Namespace) -> None:
    from mstoolkit.audio import render, save_wav
    from mstoolkit.piece import load_piece

    piece = load_piece(args.midi)
    t0 = time.perf_counter()
    audio = render(piece, sample_rate=args.sample_rate)
    elapsed = time.perf_counter() - t0
    out = Path(args.out) if args.out else Path(args.midi).with_suffix(".wav")
    save_wav(out, audio, args.sample_rate)
    seconds = len(audio) / args.sample_rate
    print(f"wrote {out}: {seconds:.1f} s of audio rendered in {elapsed:.2f} s")


# ----------------------------------------------------------------------------- info
def cmd_info(args: argparse.Namespace) -> None:
    from mstoolkit.piece import load_piece

    piece = load_piece(args.midi)
    programs = sorted({("drums" if n.is_drum else n.program) for n in piece.notes}, key=str)
    sigs = ", ".join(f"{ts.numerator}/{ts.denominator}@{ts.tick}" for ts in piece.time_signatures)
    tempos = ", ".join(f"{t.bpm:g}@{t.tick}" for t in piece.tempos)
    print(f"{args.midi}: {len(piece)} notes, {len(piece.bar_starts())} bars, "
          f"{piece.duration_seconds:.1f} s, key {piece.key or 'unknown'}")
    print(f"  time signatures: {sigs}\n  tempi (bpm@tick): {tempos}\n  programs: {programs}")


# ----------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> None:
    """The README's main job: tokenize and round-trip a shipped Bach chorale, then transfer it into a
    style with the shipped default model (``shipped.DEFAULT_MODEL``), written as MIDI and WAV."""
    from mstoolkit.audio import render, save_wav
    from mstoolkit.generate import transfer
    from mstoolkit.metrics import note_prf
    from mstoolkit.piece import load_piece, sample_paths
    from mstoolkit.styles import render_style
    from mstoolkit.tokenizer import RemiTokenizer

    _check_decoding(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = sample_paths()["bwv66.6"]
    piece = load_piece(source)
    tokenizer = RemiTokenizer()
    ids = tokenizer.encode(piece)
    decoded = tokenizer.decode(ids)
    same = sorted(decoded.notes) == sorted(piece.notes)
    print(f"{source.name}: {len(piece)} notes -> {len(ids)} REMI tokens; "
          f"round trip {'exact' if same else 'DIFFERS'}")
    print("first tokens:", " ".join(tokenizer.tokens(ids)[:12]), "...")
    decoded.save_midi(out / f"{source.stem}.roundtrip.mid")
    if not same:
        raise CliError("the tokenizer round trip changed the notes")

    # Style transfer with the chosen model: the reference is another chorale rendered in the style.
    model, tokenizer, folder = _load_model(args.checkpoint)
    reference = reference_of_flag(args.style, source)
    t0 = time.perf_counter()
    result = transfer(model, tokenizer, piece, reference, temperature=args.temperature, top_p=0.95, seed=0,
                      harmony_window=args.harmony_window, beam_size=args.beam_size,
                      unique_notes=not args.repeated_notes)
    elapsed = time.perf_counter() - t0
    midi_path, wav_path = out / f"{source.stem}.{args.style}.mid", out / f"{source.stem}.{args.style}.wav"
    result.save_midi(midi_path)
    t0 = time.perf_counter()
    save_wav(wav_path, render(result), 22050)
    score = note_prf(result, render_style(tokenizer.quantize(piece), args.style))
    print(f"transferred into {args.style} with {folder.name} in {elapsed:.1f} s: {len(result)} notes, "
          f"note F1 {score.f1:.2f} against the rule-rendered {args.style} version")
    print(f"wrote {midi_path} and {wav_path} "
          f"({result.duration_seconds:.1f} s of audio, rendered in {time.perf_counter() - t0:.1f} s)")


# ----------------------------------------------------------------------------- train
def _config_overrides(args: argparse.Namespace) -> dict[str, str]:
    return {key[4:]: value for key, value in vars(args).items() if key.startswith("key:")}


def cmd_train(args: argparse.Namespace) -> None:
    import signal

    from mstoolkit.checkpoint import LATEST_NAME, TRAIN_CONFIG_NAME, latest_checkpoint
    from mstoolkit.train import TrainConfig, Trainer

    overrides = _config_overrides(args)
    run_config = Path(args.out or TrainConfig.preset("tiny").out) / TRAIN_CONFIG_NAME
    if args.config is None and args.resume and run_config.is_file():
        config = TrainConfig.load(run_config)  # the run's own config
    elif args.config is None or args.config in _train_presets():
        config = TrainConfig.preset(args.config or "tiny")
    elif Path(args.config).suffix in (".yaml", ".yml", ".json"):
        config = TrainConfig.load(args.config)
    else:
        raise CliError(f"--config {args.config!r}: not a preset ({', '.join(_train_presets())}) nor a "
                       ".yaml/.json file")
    if args.out:
        overrides["out"] = args.out
    config = config.with_overrides(overrides)
    out = Path(config.out)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return
    if args.resume:
        try:
            latest_checkpoint(out)  # fails at once when there is nothing to resume
        except UserError as err:
            raise CliError(f"--resume: {err}") from None
    elif (out / LATEST_NAME).exists():
        raise CliError(f"{out} already holds a training run; add --resume to continue it, or choose another --out")

    trainer = Trainer(config, progress=not args.quiet)
    previous = signal.getsignal(signal.SIGINT)

    def graceful_stop(signum, frame):  # first Ctrl-C: finish the step, checkpoint, exit; second: abort
        signal.signal(signal.SIGINT, previous)
        trainer.stop()
        if trainer.is_main:
            print("\nstopping after this step (Ctrl-C again to abort without a checkpoint)", file=sys.stderr)

    signal.signal(signal.SIGINT, graceful_stop)
    try:
        if args.resume:
            folder = trainer.load_checkpoint()
            if trainer.is_main:
                print(f"resuming {folder} at step {trainer.step} of {config.max_steps}")
        elif trainer.is_main:
            n_train, n_epoch = len(trainer.train_set), len(trainer.train_items)
            repeated = f" ({n_epoch} an epoch with {', '.join(config.collection_repeats)})" if n_epoch != n_train else ""
            print(f"training {config.model_preset} ({trainer.model.num_parameters() / 1e6:.2f}M parameters) on "
                  f"{n_train} StyleBench triplets{repeated}, {trainer.world_size} process(es) on {trainer.device} "
                  f"({trainer.precision}); run folder {out}")
        history = trainer.fit()
        trainer.close(wait_for_all=True)
    finally:
        signal.signal(signal.SIGINT, previous)
        trainer.close()
    if trainer.is_main and history["step"]:
        val = [v for v in history["val_loss"] if v is not None]
        rate = sum(history["tokens_per_s"][-20:]) / len(history["tokens_per_s"][-20:])
        print(f"step {trainer.step}: loss {history['loss'][-1]:.4f}"
              + (f", val_loss {val[-1]:.4f}" if val else "") + f", {rate:.0f} target tokens/s")
        print(f"checkpoint {trainer.last_checkpoint} (mstoolkit transfer ... --checkpoint {out})")


def _train_presets() -> list[str]:
    from mstoolkit.train import TRAIN_PRESETS

    return sorted(TRAIN_PRESETS)


# ----------------------------------------------------------------------------- transfer
def _load_model(name: str, device: str = "cpu"):
    """(model, tokenizer, folder) of a checkpoint folder, a run folder (its latest checkpoint) or a
    shipped name such as ``demo``."""
    from mstoolkit.checkpoint import load_with_tokenizer

    return load_with_tokenizer(name, device=device)  # its errors name the folder and the reason


def reference_of_flag(style: str, content_path: Path):
    """The reference of ``--style``: a MIDI or audio file as given, or for a style name the library's
    reference of that style (:func:`mstoolkit.data.style_reference`: another shipped sample piece, its
    first bars rendered in the style)."""
    from mstoolkit.audio import AUDIO_SUFFIXES
    from mstoolkit.data import style_reference
    from mstoolkit.piece import load_piece
    from mstoolkit.styles import list_styles

    path = Path(style)
    if path.suffix.lower() in (".mid", ".midi") + AUDIO_SUFFIXES:
        if not path.is_file():
            raise CliError(f"--style {style}: no such file")
        return load_piece(path) if path.suffix.lower() in (".mid", ".midi") else path
    if style not in list_styles():
        raise CliError(f"--style {style!r}: not a .mid/.wav file and not a style name; styles: "
                       f"{', '.join(list_styles())}")
    try:
        return style_reference(style, avoid=content_path)
    except FileNotFoundError as err:
        raise CliError(f"--style {style}: a named style uses another shipped sample piece as the reference, and "
                       f"none was found ({err}); give a reference file (--style REF.mid or REF.wav)") from None


def cmd_transfer(args: argparse.Namespace) -> None:
    from mstoolkit.generate import transfer
    from mstoolkit.intake import intake

    if args.bars is not None and args.bars < 1:
        raise CliError(f"--bars: expected a number of bars >= 1, got {args.bars}")
    _check_decoding(args)
    for flag, value, ok in (("--top-p", args.top_p, args.top_p is None or 0 < args.top_p <= 1),
                            ("--top-k", args.top_k, args.top_k is None or args.top_k >= 1)):
        if not ok:
            raise CliError(f"{flag}: out of range ({value}); 0 < top-p <= 1, top-k >= 1")
    if args.window_bars < 0:
        raise CliError(f"--window-bars: expected a number of bars >= 1 (0: the whole piece at once), got "
                       f"{args.window_bars}")
    content_style = _content_style(args)
    took = intake(args.content, timing=args.timing, drums=args.drums, downbeat=args.downbeat)
    print(f"content {args.content}: {took.account}")
    reference = reference_of_flag(args.style, Path(args.content))
    model, tokenizer, folder = _load_model(args.checkpoint, args.device)
    if Path(args.style).suffix:  # a reference file, not a style name: say what the model hears in it
        _check_reference(model, reference, args.style, args.any_reference)
    t0 = time.perf_counter()
    piece = transfer(model, tokenizer, took, reference, temperature=args.temperature, top_p=args.top_p,
                     top_k=args.top_k, seed=args.seed, max_new_tokens=args.max_new_tokens, max_bars=args.bars,
                     window_bars=args.window_bars or None, content_style=content_style, progress=True,
                     harmony_window=args.harmony_window, beam_size=args.beam_size,
                     unique_notes=not args.repeated_notes)
    elapsed = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    piece.save_midi(out)
    print(f"wrote {out}: {len(piece)} notes, {len(piece.bar_starts()) if piece.notes else 0} bars, "
          f"{piece.duration_seconds:.1f} s (model {folder}, style {args.style}, {elapsed:.1f} s)")
    if args.wav:
        from mstoolkit.audio import render, save_wav

        save_wav(args.wav, render(piece), 22050)
        print(f"wrote {args.wav}")


def _check_reference(model, reference, flag: str, go_ahead: bool) -> None:
    """Print what the model's style encoder hears in a reference file; stop (unless ``go_ahead``) when it
    matches no known style: a transfer would then pick a style the user never asked for."""
    from mstoolkit.recognize import MUSIC_GATE, StyleRecognizer

    heard = StyleRecognizer.from_model(model, gate=MUSIC_GATE).recognize(reference)
    print(f"reference {flag}: {'the style encoder hears ' if heard.known else ''}{heard}")
    if not heard.known and not go_ahead:
        raise CliError(f"--style {flag}: {heard}. Give a reference with music in a style the model knows, or "
                       "pass --any-reference to transfer anyway")


# ----------------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> None:
    from mstoolkit.bench import GROUPS, format_style_table, format_table, run_bench, transfer_system
    from mstoolkit.data import build_stylebench, load_test_split
    from mstoolkit.train import TrainConfig

    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit: expected a number of triplets >= 1, got {args.limit}")
    _check_decoding(args)
    content_style = _content_style(args)
    data = TrainConfig().with_overrides(_config_overrides(args)).data
    if args.manifest:
        bench = load_test_split(args.manifest, args.cache_dir)
    else:
        bench = build_stylebench(data, args.cache_dir)
    systems: dict[str, object] = {name: name for name in (args.baseline or [])}
    for name in args.checkpoint or []:
        model, tokenizer, folder = _load_model(name, args.device)
        label = Path(name).name or name
        label += " (style zeroed)" if args.zero_style else ""
        label += f" (content {content_style} first)" if content_style else ""
        label += " (repeated notes)" if args.repeated_notes else ""
        systems[label] = transfer_system(
            model, tokenizer, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, seed=args.seed,
            zero_style=args.zero_style, harmony_window=args.harmony_window, beam_size=args.beam_size,
            content_style=content_style, unique_notes=not args.repeated_notes)
    if not systems:
        systems = {"identity": "identity", "oracle": "oracle"}
    results = {label: run_bench(system, split=args.split, limit=args.limit, bench=bench, by_style=args.by_style)
               for label, system in systems.items()}
    print(format_table(results))
    if args.by_style:
        for label, scores in results.items():
            for key, (_, by) in GROUPS.items():
                print(f"\n{label} by {by}:\n")
                print(format_style_table(scores[key], by=by, overall=scores))
    if args.json:
        report = {"split": args.split, "limit": args.limit, "temperature": args.temperature, "top_p": args.top_p,
                  "beam_size": args.beam_size, "content_style": content_style, "seed": args.seed, "stylebench": bench.config.to_dict(), "results": results}
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")


def _add_config_keys(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """One flag per TrainConfig key (``--lr``, ``--max-steps``, ``--data.corpus``, ``--model.dropout``);
    keys starting with ``prefix`` only. Values are parsed and checked by TrainConfig."""
    import typing

    from mstoolkit.config import field_comments
    from mstoolkit.data import StyleBenchConfig
    from mstoolkit.model import ModelConfig
    from mstoolkit.train import TrainConfig

    defaults = TrainConfig.preset("tiny").to_dict()
    # each flag's help is the comment beside its field in the source (written once, there); read only for
    # the classes whose keys are shown (reading a class's source costs ~50 ms)
    classes = {"": TrainConfig, "data": StyleBenchConfig, "model": ModelConfig}
    group = parser.add_argument_group("config keys" if not prefix else "StyleBench keys",
                                      "override the preset / config file; lists are comma-separated")
    for key, tp in TrainConfig.keys().items():
        if not key.startswith(prefix) or key == "out":
            continue
        head, _, tail = key.rpartition(".")
        shown = f"--{head + '.' if head else ''}{tail.replace('_', '-')}"
        default = defaults[head][tail] if head == "data" else defaults.get(key, "preset's value")
        label = _type_label(tp, typing)
        kwargs = dict(dest=f"key:{key}", default=argparse.SUPPRESS, metavar=label.upper())
        if tp is bool:
            kwargs.update(nargs="?", const="true")
        options = [shown] + ([f"--{key}"] if f"--{key}" != shown else [])
        said = field_comments(classes[head]).get(tail, "").rstrip(".").replace("%", "%%")  # argparse formats help with %
        group.add_argument(shown, help=f"{said} (default: {default})" if said else f"default: {default}", **kwargs)
        for alias in options[1:]:
            group.add_argument(alias, help=argparse.SUPPRESS, **kwargs)


def _type_label(tp, typing) -> str:
    union = typing.get_origin(tp) in (typing.Union, __import__("types").UnionType)
    base = next(a for a in typing.get_args(tp) if a is not type(None)) if union else tp
    if typing.get_origin(base) is tuple:
        return "list"
    return {int: "int", float: "float", str: "str", bool: "bool"}.get(base, "value")


# ----------------------------------------------------------------------------- studio
def cmd_studio(args: argparse.Namespace) -> None:
    """The classroom app: Transfer Studio and style gallery served by Voila on 127.0.0.1."""
    from mstoolkit.studio import serve

    try:
        serve(port=args.port, open_browser=not args.no_browser, model=args.model)
    except ImportError as err:
        raise CliError(str(err)) from None


# ----------------------------------------------------------------------------- parser
def _add_temperature(p: argparse.ArgumentParser) -> None:
    p.add_argument("--temperature", type=float, default=TRANSFER_TEMPERATURE, help="sampling temperature, 0 = "
                   f"greedy (default {TRANSFER_TEMPERATURE:g}: greedy keeps the most notes)")


def _add_harmony_window(p: argparse.ArgumentParser) -> None:
    p.add_argument("--harmony-window", type=float, default=None, metavar="BEATS",
                   help="keep the content's harmony: each note may only take a pitch class the content sounds "
                        "within BEATS beats of it (mstoolkit.harmony; default: off)")
    p.add_argument("--repeated-notes", action="store_true",
                   help="let an instrument start one pitch twice at one onset, as decoding did before 2026-12-02 "
                        "(default: forbidden, mstoolkit.unique_notes: such repeats sound as one note, and a greedy "
                        "loop of them can eat a window)")


def _content_style(args: argparse.Namespace) -> str | None:
    """``--content-style`` as ``transfer`` takes it (None for 'none'), checked before the model loads."""
    from mstoolkit.styles import list_styles

    content_style = None if args.content_style.lower() == "none" else args.content_style
    if content_style is not None and content_style not in list_styles():
        raise CliError(f"--content-style {content_style!r}: not a style; styles: {', '.join(list_styles())}, "
                       "or none")
    return content_style


def _add_beam_size(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beam-size", type=int, default=1, metavar="K",
                   help="beam search: keep K hypotheses per window (greedy only; default 1: plain greedy)")


def _check_decoding(args: argparse.Namespace) -> None:
    """The decoding flags in range, before anything slow loads."""
    for flag, value, ok in (("--temperature", args.temperature, args.temperature >= 0),
                            ("--harmony-window", args.harmony_window, args.harmony_window is None
                             or args.harmony_window >= 0),
                            ("--beam-size", args.beam_size, args.beam_size >= 1
                             and (args.beam_size == 1 or args.temperature == 0))):
        if not ok:
            raise CliError(f"{flag}: out of range ({value}); temperature >= 0, harmony-window >= 0, beam-size >= 1 "
                           "(above 1 only with --temperature 0)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; the config-key flags of ``train``/``bench`` (which need torch) are added
    only when ``command`` is that sub-command, so ``mstoolkit --help`` answers at once."""
    parser = argparse.ArgumentParser(prog="mstoolkit", description=__doc__.split("\n")[0] + " "
                                     "Symbolic music style transfer with Transformers.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add("tokenize", cmd_tokenize, "MIDI file -> REMI token ids (and names) as JSON")
    p.add_argument("midi", type=_existing_file, help="input .mid file")
    p.add_argument("--names", action="store_true", help="also list token names")
    p.add_argument("--out", help="write the JSON here instead of printing it")
    p.add_argument("--compact", action="store_true", help="one-line JSON")
    p.add_argument("--tokenizer", type=_existing_file, help="a tokenizer JSON saved with RemiTokenizer.save")

    p = add("render", cmd_render, "MIDI file -> WAV with the General-MIDI soundfont")
    p.add_argument("midi", type=_existing_file, help="input .mid file")
    p.add_argument("--out", help="output .wav (default: next to the input)")
    p.add_argument("--sample-rate", type=int, default=22050, help="samples per second (default 22050)")

    p = add("info", cmd_info, "summarize a MIDI file: notes, bars, tempi, time signatures")
    p.add_argument("midi", type=_existing_file, help="input .mid file")

    p = add("demo", cmd_demo, "the main job: round-trip a shipped chorale, then transfer it into a style")
    p.add_argument("--out", default="out", help="output folder (default: out)")
    p.add_argument("--style", default="swing", help="style name (default: swing)")
    p.add_argument("--checkpoint", default=DEFAULT_MODEL, help="model: shipped name or checkpoint folder "
                   f"(default: {DEFAULT_MODEL})")
    _add_temperature(p)
    _add_harmony_window(p)
    _add_beam_size(p)

    p = add("train", cmd_train, "train a style-transfer model on StyleBench (under torchrun: DDP)")
    p.epilog = ("Every config key is a flag (--lr 3e-4, --data.corpus DIR, --model.dropout 0.1); "
                "--print-config shows the resolved config. Multi-GPU: torchrun --nproc_per_node=N -m "
                "mstoolkit.cli train ...")
    p.add_argument("--config", help="a preset (debug, tiny, base) or a .yaml/.json config file (default: tiny; "
                   "with --resume: the run's own config)")
    p.add_argument("--out", help="run folder for checkpoints and log.jsonl (default: runs/<preset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--print-config", action="store_true", help="print the resolved config (YAML) and exit")
    if command == "train":
        _add_config_keys(p)

    p = add("transfer", cmd_transfer, "re-write a MIDI file in the style of a reference")
    p.add_argument("content", type=_existing_file, help="the piece to re-write (.mid): a score, a multi-track "
                   "song (drum tracks are kept as they are and laid back over the result) or a performance "
                   "played without a click (its beats are estimated); the first line printed says what was done")
    p.add_argument("--style", required=True, help="a style name (swing, waltz, ...: a sample piece rendered in "
                   "that style is the reference), or a reference file REF.mid / .wav / .flac / .ogg / .mp3 "
                   "(the styles the model hears in it are printed; one that matches none stops the transfer)")
    p.add_argument("--any-reference", action="store_true", help="transfer even when the reference file "
                   "matches no style the model knows (speech, noise, silence, music far from its styles)")
    p.add_argument("--timing", default="auto", choices=("auto", "file", "estimate"), help="the content's beat "
                   "grid: the file's tempo map, beats estimated from the notes (a performance without a "
                   "click), or auto: estimated when the onsets fit no grid (default auto)")
    p.add_argument("--downbeat", default="auto", choices=("auto", "file"), help="bar lines of a file on its own "
                   "grid: auto pads a pickup the file starts on at tick 0 with a leading rest (the output then "
                   "starts that much later), file keeps the file's bar lines (default auto)")
    p.add_argument("--drums", default="keep", choices=("keep", "transfer"), help="drum tracks: kept as they "
                   "are and laid back over the result, or given to the model with the rest (default keep)")
    p.add_argument("--checkpoint", default=DEFAULT_MODEL, help="shipped name, checkpoint folder or run folder "
                   f"(default: {DEFAULT_MODEL})")
    p.add_argument("--out", required=True, help="output .mid")
    p.add_argument("--wav", help="also render the output to this .wav")
    p.add_argument("--bars", type=int, help="use only the first N bars of the content")
    _add_temperature(p)
    _add_harmony_window(p)
    _add_beam_size(p)
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely tokens only")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--max-new-tokens", type=int, help="token limit per window (default: 2 x its content tokens + 256)")
    p.add_argument("--window-bars", type=int, default=4, help="transfer the content this many bars at a time, "
                   "16 windows per batch (default 4, StyleBench's window; 0: the whole piece at once)")
    p.add_argument("--content-style", default="straight",
                   help="render the content in this StyleBench style before the model reads it, as in "
                        "training (default straight: every note kept, strings, legato); 'none': as given")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")

    p = add("bench", cmd_bench, "score systems on StyleBench's test split and print a table")
    p.add_argument("--baseline", action="append", choices=("identity", "oracle", "rule"),
                   help="a baseline system (repeatable; default: identity and oracle when no --checkpoint is "
                   "given): identity = the content unchanged, oracle = the target, rule = the target style's "
                   "renderer applied to the content (what the content alone lets a perfect rule-follower recover)")
    p.add_argument("--checkpoint", action="append", help="a model: shipped name, checkpoint or run folder "
                   "(repeatable)")
    p.add_argument("--limit", type=int, help="score only the first N triplets")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="(default: test)")
    p.add_argument("--json", help="also write the scores to this JSON file (with --by-style: the tables by style)")
    p.add_argument("--by-style", action="store_true", help="also print, per system, tables by target style and "
                   "by source style")
    _add_temperature(p)
    _add_harmony_window(p)
    _add_beam_size(p)
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely tokens only")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of the first triplet (default 0)")
    p.add_argument("--zero-style", action="store_true", help="ablation: replace the style vector by zeros")
    p.add_argument("--content-style", default="none",
                   help="'none' (default): the model reads each triplet's content as StyleBench renders it, as "
                        "in training; a style name (straight) re-renders it first, as transfer does to a raw file")
    p.add_argument("--manifest", type=_manifest_file, help="a saved test split (JSON), or test_split_v1 (the "
                   "shipped one), instead of a fresh build")
    p.add_argument("--cache-dir", help="data cache folder (default: $MSTOOLKIT_CACHE or ~/.cache/mstoolkit)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    if command == "bench":
        _add_config_keys(p, prefix="data.")

    p = add("studio", cmd_studio, "the Transfer Studio and style gallery as a web app in the browser (offline)")
    p.epilog = "Serves on 127.0.0.1 only; Ctrl-C stops the server. Needs no internet connection."
    p.add_argument("--port", type=int, help="port to serve on (default: 8866, or a free one if that is taken)")
    p.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")
    p.add_argument("--model", default=DEFAULT_MODEL, help="shipped name, checkpoint folder or run folder "
                   f"(default: {DEFAULT_MODEL})")
    return parser


def _version() -> str:
    from mstoolkit import __version__

    return __version__


def _command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command(argv))
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unknown_arguments(parser, args, extra)
    try:
        args.func(args)
    except _user_mistakes() as exc:
        print(f"mstoolkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _unknown_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """One line naming the first unknown argument and the closest known flags; exit status 2."""
    import difflib

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    known = [o for action in sub._actions if action.help != argparse.SUPPRESS for o in action.option_strings]
    flag = extra[0].split("=")[0]
    close = difflib.get_close_matches(flag.replace("_", "-"), known, n=3) if flag.startswith("-") else []
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    print(f"mstoolkit {args.command}: error: unrecognized argument {extra[0]!r}{hint} "
          f"(see mstoolkit {args.command} --help)", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    sys.exit(main())
