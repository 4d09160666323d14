"""Tests for the `mstoolkit` command: help, tokenize/render/info, train -> transfer -> bench on a tiny
corpus with the debug model, one-line errors (exit status 2) for wrong arguments, tracebacks for bugs."""
from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest
import yaml

from mstoolkit.cli import main
from mstoolkit.config import UserError
from mstoolkit.piece import MidiError, Piece, sample_paths
from test_train import tiny_corpus

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = sample_paths()["bwv66.6"]
COMMANDS = ("tokenize", "render", "info", "demo", "train", "transfer", "bench")
DATA_FLAGS = ["--data.styles", "straight,swing,waltz", "--data.window-bars", "2", "--data.seed", "3",
              "--data.split-fractions", "0.5,0.25,0.25", "--data.triplets-per-window", "2",
              "--data.eval-triplets-per-window", "2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory)


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    """A 3-step debug run trained by `mstoolkit train`."""
    folder, cache = corpus
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", "--config", "debug", "--out", str(out), "--max-steps", "3", "--eval-samples", "2",
                 "--eval-bench", "1",
                 "--cache-dir", str(cache), "--data.corpus", str(folder), "--quiet", *DATA_FLAGS])
    assert code == 0
    return out


def fails(argv: list[str], capsys) -> str:
    """Run the CLI, expect exit status 2 and return its one-line error."""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err, f"{argv} returned {code}"
    assert err[-1].startswith(f"mstoolkit {argv[0]}: error: "), err
    return err[-1]


# ------------------------------------------------------------------------------ help and the file commands
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: mstoolkit {command}" in capsys.readouterr().out


def test_train_help_explains_each_config_key_with_the_comment_in_its_source(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--lr FLOAT peak learning rate, reached after warm-up (default: 0.001)" in out
    assert "--data.min-notes INT windows with fewer notes are skipped (default: 8)" in out
    assert "--reference-transpose INT ... and move each redrawn reference" in out


def test_top_level_help_lists_the_commands_without_importing_torch():
    code = ("import sys; from mstoolkit import cli\n"
            "try: cli.main(['--help'])\nexcept SystemExit: pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert all(c in out for c in COMMANDS) and out.strip().endswith("False")


def test_tokenize_info_and_render_a_sample(tmp_path, capsys):
    assert main(["tokenize", str(SAMPLE), "--names", "--out", str(tmp_path / "ids.json")]) == 0
    result = json.loads((tmp_path / "ids.json").read_text())
    assert result["ids"][0] == 1 and result["ids"][-1] == 2 and len(result["tokens"]) == result["n_tokens"]
    assert main(["info", str(SAMPLE)]) == 0
    assert "notes" in capsys.readouterr().out
    assert main(["render", str(SAMPLE), "--out", str(tmp_path / "s.wav"), "--sample-rate", "8000"]) == 0
    with wave.open(str(tmp_path / "s.wav")) as w:
        assert w.getframerate() == 8000 and w.getnframes() > 8000


# ------------------------------------------------------------------------------ train -> transfer -> bench
def test_train_writes_a_run_that_resumes_and_transfers(run, corpus, tmp_path, capsys):
    assert (run / "latest").read_text().strip() == "step_000003"
    log = [json.loads(r) for r in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 3]
    assert log[-1]["val_loss"] > 0 and 0 <= log[-1]["val_note_f1"] <= 1  # generated transfers, scored
    # --resume without --config takes the run's own config; a larger --max-steps continues it
    assert main(["train", "--out", str(run), "--resume", "--max-steps", "4", "--quiet"]) == 0
    assert "resuming" in capsys.readouterr().out and (run / "latest").read_text().strip() == "step_000004"

    for style in ("swing", str(corpus[0] / "piece05.mid")):  # a named style and a reference MIDI file
        out = tmp_path / f"{Path(style).stem}.mid"
        assert main(["transfer", str(SAMPLE), "--style", style, "--checkpoint", str(run), "--out", str(out),
                     "--bars", "2", "--temperature", "0.9", "--seed", "1"]) == 0
        assert len(Piece.from_midi(out)) > 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert main(["transfer", str(SAMPLE), "--style", "waltz", "--checkpoint", str(run / "step_000004"),
                 "--out", str(tmp_path / "w.mid"), "--wav", str(tmp_path / "w.wav"), "--bars", "1"]) == 0
    with wave.open(str(tmp_path / "w.wav")) as w:
        assert w.getnframes() > 0


def test_bench_prints_a_table_and_writes_json(run, corpus, tmp_path, capsys):
    folder, cache = corpus
    report = tmp_path / "bench.json"
    assert main(["bench", "--baseline", "identity", "--checkpoint", str(run), "--limit", "1", "--json", str(report),
                 "--cache-dir", str(cache), "--data.corpus", str(folder), *DATA_FLAGS]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| measure | identity | run |" and any(line.startswith("| note_f1 |") for line in table)
    results = json.loads(report.read_text())["results"]
    assert results["identity"]["n_triplets"] == results["run"]["n_triplets"] == 1
    assert results["identity"]["content_similarity"] == 1.0
    # every run reports where the output notes went (shares of all output notes), printed and in the JSON
    kinds = ("exact", "octave", "wrong_pitch", "timing", "other")
    for kind in kinds:
        assert any(line.startswith(f"| share_{kind} | ") for line in table), kind
    for scores in results.values():
        assert sum(scores[f"share_{k}"] for k in kinds) == pytest.approx(1.0) and scores["notes_output"] > 0
    assert not any(line.endswith("by target style:") for line in table)  # no tables by style unasked


def test_bench_by_style_prints_tables_by_target_and_source_style(corpus, tmp_path, capsys):
    folder, cache = corpus
    report = tmp_path / "bench.json"
    assert main(["bench", "--baseline", "identity", "--baseline", "oracle", "--limit", "3", "--by-style",
                 "--json", str(report), "--cache-dir", str(cache), "--data.corpus", str(folder), *DATA_FLAGS]) == 0
    out = capsys.readouterr().out
    results = json.loads(report.read_text())["results"]
    headings = [line for line in out.splitlines() if line.endswith(" style:")]
    assert headings == ["identity by target style:", "identity by source style:", "oracle by target style:",
                        "oracle by source style:"]
    oracle = results["oracle"]["by_target_style"]
    assert sum(g["n_triplets"] for g in oracle.values()) == 3
    header = ("| target style | n_triplets | style_accuracy | note_f1 | dtw_similarity | content_similarity | "
              "share_exact | share_octave | share_wrong_pitch | share_timing | share_other |")
    assert header in out and header.replace("target", "source") in out
    for style, scores in oracle.items():  # the oracle is the target: every note exact, in every style
        assert scores["note_f1"] == scores["share_exact"] == 1.0 and scores["share_wrong_pitch"] == 0.0
        assert f"| {style} | {scores['n_triplets']} | " in out
    assert out.count("| all | 3 | ") == 4  # each table ends with the system's overall row
    identity = results["identity"]["by_source_style"]
    assert sum(g["n_triplets"] for g in identity.values()) == 3
    assert all(g["content_similarity"] == 1.0 for g in identity.values())  # identity copies the content


def test_transfer_reads_a_song_says_what_it_did_and_checks_the_reference(tmp_path, capsys):
    """A multi-track song: one line says what was done to its tracks, and its drums come back unchanged; a
    reference file is heard first, and speech stops the transfer unless --any-reference."""
    from mstoolkit import audio
    from mstoolkit.piece import Note
    from mstoolkit.shipped import shipped_path
    from mstoolkit.styles import render_style

    chorale = Piece.from_midi(SAMPLE).slice_bars(0, 2)
    drums = [Note(12 * i, 3, 36 if i % 2 == 0 else 42, 100, is_drum=True) for i in range(8)]
    song = tmp_path / "song.mid"
    chorale.replace(notes=chorale.notes + drums).save_midi(song)
    import soundfile

    waltz = tmp_path / "waltz.flac"  # a recording of waltz, quieter than the model's references
    soundfile.write(waltz, 0.3 * audio.render(render_style(Piece.from_midi(sample_paths()["bwv269"]).slice_bars(4, 4),
                                                           "waltz")), audio.SAMPLE_RATE)
    out = tmp_path / "song_waltz.mid"
    assert main(["transfer", str(song), "--style", str(waltz), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 tracks (piano, drums): drums kept unchanged, piano transferred" in printed
    assert "the style encoder hears waltz" in printed
    result = Piece.from_midi(out)
    assert sorted((n.start, n.pitch) for n in result.notes if n.is_drum) == [(n.start, n.pitch) for n in drums]
    speech = str(shipped_path("audio", "speech_gettysburg.ogg"))
    message = fails(["transfer", str(song), "--style", speech, "--out", str(out)], capsys)
    assert "matches no known style" in message and "--any-reference" in message
    assert main(["transfer", str(song), "--style", speech, "--out", str(out), "--any-reference"]) == 0


def test_transfer_finds_the_bar_lines_of_a_file_that_opens_on_its_pickup(tmp_path, capsys):
    score = Piece.from_midi(SAMPLE)  # bwv66.6: a one-beat pickup, padded with a rest in the sample
    lead = min(n.start for n in score.notes)
    opens_on_pickup = tmp_path / "pickup.mid"
    score.replace(notes=[dataclasses.replace(n, start=n.start - lead) for n in score.notes]).save_midi(opens_on_pickup)
    out = tmp_path / "out.mid"
    assert main(["transfer", str(opens_on_pickup), "--style", "swing", "--bars", "3", "--out", str(out)]) == 0
    assert "opens on a 1-beat pickup, padded with a 3-beat rest" in capsys.readouterr().out
    assert min(n.start for n in Piece.from_midi(out).notes) >= lead  # the output keeps the lead-in rest
    assert main(["transfer", str(opens_on_pickup), "--style", "swing", "--bars", "3", "--out", str(out),
                 "--downbeat", "file"]) == 0
    assert "padded with" not in capsys.readouterr().out


# ------------------------------------------------------------------------------ errors
def test_wrong_arguments_exit_2_with_one_clear_line(run, tmp_path, capsys):
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"not a midi file")
    transfer = ["transfer", str(SAMPLE), "--checkpoint", str(run), "--out", str(tmp_path / "o.mid")]
    assert "not a .mid/.wav file and not a style name" in fails(transfer + ["--style", "polka"], capsys)
    assert "no such file" in fails(transfer + ["--style", str(tmp_path / "missing.wav")], capsys)
    assert "garbage.mid" in fails(["transfer", str(garbage), "--style", "swing", "--out", "o.mid"], capsys)
    assert "not a shipped checkpoint" in fails(
        ["transfer", str(SAMPLE), "--style", "swing", "--checkpoint", str(tmp_path / "nope"), "--out", "o.mid"], capsys)
    assert "--top-p" in fails(transfer + ["--style", "swing", "--top-p", "1.5"], capsys)
    assert "--beam-size" in fails(transfer + ["--style", "swing", "--beam-size", "4", "--temperature", "0.9"], capsys)
    assert "--beam-size" in fails(["bench", "--beam-size", "0"], capsys)
    assert "--content-style 'polka': not a style" in fails(["bench", "--content-style", "polka"], capsys)
    assert "--content-style 'polka': not a style" in fails(transfer + ["--style", "swing", "--content-style", "polka"],
                                                            capsys)
    assert "did you mean --lr" in fails(["train", "--lrr", "0.1"], capsys)
    assert "lr: expected a number, got 'fast'" in fails(["train", "--lr", "fast"], capsys)
    assert "unknown style(s) ['polka']" in fails(["train", "--data.styles", "polka"], capsys)
    assert "not a preset" in fails(["train", "--config", "huge"], capsys)
    assert "already holds a training run" in fails(["train", "--config", "debug", "--out", str(run)], capsys)
    assert "holds no checkpoint" in fails(["train", "--out", str(tmp_path / "empty"), "--resume"], capsys)
    assert "--limit" in fails(["bench", "--limit", "0"], capsys)
    assert "invalid choice" in fails(["bench", "--baseline", "copy"], capsys)
    assert "no such file" in fails(["info", str(tmp_path / "missing.mid")], capsys)
    # mistakes the library finds (UserError) are one line too
    assert "window_bars" in fails(["train", "--data.window-bars", "0"], capsys)
    assert "max_new_tokens: expected 1.." in fails(transfer + ["--style", "swing", "--max-new-tokens", "99999",
                                                               "--bars", "1"], capsys)
    assert "holds no checkpoint" in fails(["transfer", str(SAMPLE), "--style", "swing", "--checkpoint",
                                           str(tmp_path), "--out", "o.mid"], capsys)


@pytest.mark.parametrize("error, one_line", [(ValueError("a bug deep inside"), False),
                                             (KeyError("another bug"), False),
                                             (UserError("--style: a mistake the library found"), True),
                                             (MidiError("x.mid: not a MIDI file"), True)])
def test_user_mistakes_are_one_line_and_bugs_keep_their_traceback(error, one_line, monkeypatch, capsys):
    """A ValueError that is not a UserError is a bug: main() lets it through (Python prints the traceback)."""
    def load_piece(*args, **kwargs):
        raise error

    monkeypatch.setattr("mstoolkit.piece.load_piece", load_piece)  # what `mstoolkit info` calls first
    if one_line:
        assert fails(["info", str(SAMPLE)], capsys) == f"mstoolkit info: error: {error}"
    else:
        with pytest.raises(type(error)):
            main(["info", str(SAMPLE)])


def test_print_config_shows_the_resolved_yaml(tmp_path, capsys):
    (tmp_path / "run.yaml").write_text("model_preset: debug\nlr: 0.002\n")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--max-steps", "9", "--model.dropout", "0.1",
                 "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "model_preset: debug" in out and "lr: 0.002" in out and "max_steps: 9" in out and "dropout: 0.1" in out


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_models_chains_train_commands_that_parse(tmp_path, capsys):
    """`make demo-models` (the shipped checkpoints' recipe): every stage is a valid `mstoolkit train`
    command, and each stage after the first starts from the one before."""
    shown = subprocess.run(["make", "-n", "--no-print-directory", "demo-models", f"RUNS={tmp_path}"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.replace("\\\n", " ")
    stages = [shlex.split(line) for line in shown.splitlines() if "mstoolkit.cli train" in line]
    assert len(stages) == 3
    configs = []
    for words in stages:
        assert main(words[words.index("train"):] + ["--print-config"]) == 0
        configs.append(yaml.safe_load(capsys.readouterr().out))
    assert [c["out"] for c in configs] == [str(tmp_path / n) for n in ("demo", "demo_v2_a", "demo_v2")]
    assert [c["init_from"] for c in configs] == [None] + [c["out"] for c in configs[:-1]]
    assert configs[-1]["data"]["corpus"] == "stylebench-v2" and configs[-1]["collection_repeats"] == ["bach=3"]
    # the last stage is the recipe the shipped default was trained with (all but its folders)
    shipped = json.loads((ROOT / "data_samples/checkpoints/demo_v2/train_config.json").read_text())
    differ = {k for k in shipped if k not in ("out", "init_from") and configs[-1].get(k) != shipped[k]}
    assert not differ, {k: (configs[-1].get(k), shipped[k]) for k in differ}


def test_demo_round_trips_a_sample_and_transfers_it_with_the_demo_model(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "round trip exact" in out and "transferred into swing" in out
    content = Piece.from_midi(SAMPLE)
    assert Piece.from_midi(tmp_path / "bwv66.6.roundtrip.mid").notes == content.notes
    swing = Piece.from_midi(tmp_path / "bwv66.6.swing.mid")
    assert len(swing.notes) > 50 and len(swing.bar_starts()) <= len(content.bar_starts())
    assert {n.program for n in swing.notes} != {n.program for n in content.notes}  # re-orchestrated
    with wave.open(str(tmp_path / "bwv66.6.swing.wav")) as wav:
        assert wav.getnframes() > 15 * wav.getframerate()  # the chorale lasts about 25 s
