"""Drive TrainingDashboard and TransferStudio without a browser: press buttons, set values, check
the figures, audio, scores and messages. Training uses the `debug` model on test_train's tiny corpus
(eight 2-bar pieces); transfers use the untrained in-memory `debug` model."""
from __future__ import annotations

import datetime
import time

import pytest

pytest.importorskip("ipywidgets")

import mstoolkit.generate  # noqa: E402
from mstoolkit import audio, metrics  # noqa: E402
from mstoolkit.piece import Note, Piece, TempoChange, load_piece, sample_paths  # noqa: E402
from mstoolkit.styles import list_styles, render_style  # noqa: E402
from mstoolkit.checkpoint import LATEST_NAME, read_log  # noqa: E402
from mstoolkit.widgets import TrainingDashboard, TransferStudio  # noqa: E402
from mstoolkit.widgets.training_dashboard import parse_settings  # noqa: E402
from test_train import tiny_corpus, train_config  # noqa: E402

ERROR = "color:#b00020"


def _upload(content: bytes, name: str) -> tuple:
    return ({"name": name, "type": "application/octet-stream", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime(2026, 1, 1)},)


def _wait_for(condition, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out waiting for the training thread"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory)


# ------------------------------------------------------------------------------ TrainingDashboard
def test_dashboard_trains_in_a_thread_and_fills_curves_progress_and_audio(corpus, tmp_path):
    out = tmp_path / "run"
    dash = TrainingDashboard(train_config(*corpus, out, max_steps=6, eval_every=3, ckpt_every=0),
                             sample_every=3, sample_bars=1)
    assert "Ready" in dash.status.value and dash.max_steps.value == 6
    dash.start_button.click()
    assert dash.running and dash.start_button.disabled and not dash.stop_button.disabled  # the kernel is free
    assert dash.wait(60)
    trainer = dash.trainer
    traces = {t.name: t for t in dash.figure.data}
    assert trainer.step == 6 and (dash.progress.value, dash.progress.max) == (6, 6)
    assert list(traces["loss"].x) == [1, 2, 3, 4, 5, 6]
    assert list(traces["loss"].y) == pytest.approx(trainer.history["loss"])
    assert list(traces["lr"].y) == pytest.approx(trainer.history["lr"]) and min(traces["tokens_per_s"].y) > 0
    assert list(traces["val_loss"].x) == [3, 6] and all(v > 0 for v in traces["val_loss"].y)
    assert [step for step, _, _ in dash.samples] == [3, 6]
    assert all(isinstance(piece, Piece) for _, piece, _ in dash.samples)
    assert "Step 6" in dash.sample_box.value and ("<audio" in dash.sample_box.value or "no notes" in dash.sample_box.value)
    assert "Finished: 6 steps" in dash.status.value and ERROR not in dash.status.value
    assert (out / LATEST_NAME).read_text().strip() == "step_000006"
    assert not dash.start_button.disabled and dash.stop_button.disabled
    assert len(dash.static_figure().data) == 3
    logged = read_log(out)  # the run folder's log, as the library reads it
    assert logged["step"] == [1, 2, 3, 4, 5, 6] and logged["eval_step"] == [3, 6]
    assert logged["loss"] == pytest.approx(trainer.history["loss"])


def test_dashboard_pause_continue_stop_and_start_again(corpus, tmp_path):
    dash = TrainingDashboard(train_config(*corpus, tmp_path / "run", max_steps=500, eval_every=0, ckpt_every=0),
                             sample_every=0)
    dash.start()
    _wait_for(lambda: dash.trainer is not None and dash.trainer.step >= 2)
    dash.start()
    assert "already running" in dash.status.value
    dash.pause_button.click()
    assert "Paused" in dash.status.value and dash.pause_button.description == "Continue"
    time.sleep(0.3)  # the step under way finishes, then the trainer holds
    held = dash.trainer.step
    time.sleep(0.4)
    assert dash.trainer.step == held and dash.running
    dash.pause_button.click()
    _wait_for(lambda: dash.trainer.step > held)
    dash.stop_button.click()
    assert dash.wait(30)
    stopped = dash.trainer.step
    assert held < stopped < 500 and f"Stopped at step {stopped}" in dash.status.value
    assert dash.progress.value == stopped and len(dash.figure.data[0].x) == stopped
    assert (tmp_path / "run" / LATEST_NAME).read_text().strip() == f"step_{stopped:06d}"
    trainer = dash.trainer
    dash.start()  # the same settings: the same run goes on
    _wait_for(lambda: dash.trainer.step > stopped)
    dash.stop()
    assert dash.wait(30) and dash.trainer is trainer and dash.history["step"][stopped] == stopped + 1
    dash.pause_button.click()
    assert "Nothing to pause" in dash.status.value


def test_dashboard_bad_config_shows_a_message_not_a_traceback(corpus, tmp_path):
    dash = TrainingDashboard(train_config(*corpus, tmp_path / "run"))
    dash.settings.value = "lr: fast"
    dash.start_button.click()
    assert ERROR in dash.status.value and "lr: expected a number, got &#x27;fast&#x27;" in dash.status.value
    assert not dash.running and dash.trainer is None
    dash.settings.value = "warmup_steps 3"
    dash.start()
    assert "expected `key: value`" in dash.status.value and not dash.running
    dash.settings.value = "data.corpus: /no/such/folder  # fails inside the training thread"
    dash.start()
    assert dash.wait(30)
    assert "Training failed: music21 corpus has nothing" in dash.status.value and "/no/such/folder" in dash.status.value
    assert dash.error is not None and not dash.start_button.disabled
    missing = TrainingDashboard(str(tmp_path / "missing.yaml"))
    assert "Bad training config" in missing.status.value and "no such config file" in missing.status.value
    missing.start()
    assert "no training config" in missing.status.value
    assert parse_settings("lr = 3e-4\n# comment\nout: runs/x:y") == {"lr": "3e-4", "out": "runs/x:y"}


# ------------------------------------------------------------------------------ TransferStudio
@pytest.fixture(scope="module")
def studio():
    return TransferStudio(model="debug", sample="bwv66.6", style="swing", bars=2, recognizer=None)


def test_studio_generates_and_fills_rolls_audio_and_scores(studio):
    result = studio.generate()
    assert isinstance(result, Piece) and studio.result is result and len(result) > 0
    expected = load_piece(sample_paths()["bwv66.6"]).slice_bars(0, 2)
    assert studio.content.notes == expected.notes
    assert studio.target.notes == render_style(expected, "swing").notes
    assert studio.figures["content"].data and studio.figures["result"].data
    title = studio.figures["result"].layout.title.text  # names the content, then the style's source
    assert title.startswith("result: bwv66.6 in the style of ") and title.endswith(" in swing"), title
    content_x = [x for trace in studio.figures["content"].data for x in trace.x if x is not None]
    assert max(content_x) <= 8  # two 4/4 bars, in beats
    assert set(studio.audios) == {"content", "result", "target", "reference"}
    assert studio.audio_box.value.count("<audio") == 4
    for key in ("note_f1", "dtw_similarity", "content_similarity", "style_profile_similarity"):
        assert 0.0 <= studio.metrics[key] <= 1.0
    assert studio.baseline_metrics["content_similarity"] == pytest.approx(1.0)  # the content copied
    assert studio.metrics["swing_ratio_error"] is not None  # a swing target
    assert studio.predicted_style in list_styles() and studio.metrics["style_correct"] in (0.0, 1.0)
    assert "note F1" in studio.score_box.value and ERROR not in studio.status.value
    # the error breakdown of the piece at hand, against the same target
    assert studio.breakdown == metrics.error_breakdown(result, studio.target)
    assert studio.baseline_breakdown == metrics.error_breakdown(studio.content, studio.target)
    b = studio.breakdown
    assert "right onset, wrong pitch" in studio.score_box.value
    assert f"{b['wrong_pitch']} of {b['n_output']}" in studio.score_box.value
    assert f"{b['missed']} of {b['n_target']}" in studio.score_box.value
    assert "bwv66.6" in studio.status.value and "swing" in studio.status.value


def test_studio_sliders_and_seed_reach_the_sampler(studio, monkeypatch):
    calls, real = [], mstoolkit.generate.transfer

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(mstoolkit.generate, "transfer", spy)
    studio.temperature.value, studio.top_p.value, studio.seed.value = 0.5, 1.0, 7
    first = studio.generate()
    second = studio.generate()
    assert [(c["temperature"], c["top_p"], c["seed"]) for c in calls] == [(0.5, None, 7)] * 2
    assert first.notes == second.notes  # the seed fixes the sampling
    studio.top_p.value, studio.seed.value = 0.9, 8
    studio.generate()
    assert (calls[-1]["top_p"], calls[-1]["seed"], calls[-1]["harmony_window"]) == (0.9, 8, None)
    studio.keep_harmony.value = True
    studio.generate()
    assert calls[-1]["harmony_window"] == 1.0
    studio.keep_harmony.value = False


def test_studio_corpus_content_and_reference_uploads(studio, tmp_path):
    studio.corpus.value = "bach/bwv10.7"
    assert studio.content_source.value == "corpus"
    assert studio.generate() is not None and studio.content.name == "bach/bwv10.7"
    reference = render_style(load_piece(sample_paths()["bwv269"]).slice_bars(0, 4), "waltz")
    studio.reference_upload.value = _upload(reference.to_midi_bytes(), "waltz_ref.mid")
    assert studio.style_source.value == "upload"
    assert studio.generate() is not None and studio.target is None
    assert studio.reference.notes == reference.notes
    assert "note_f1" not in studio.metrics and 0 <= studio.metrics["style_profile_similarity"] <= 1
    assert studio.breakdown == {} and "wrong pitch" not in studio.score_box.value  # no target, no breakdown
    assert "no ground truth" in studio.score_box.value and "target" not in studio.audios
    audio.save_wav(tmp_path / "ref.wav", audio.render(reference))
    studio.reference_upload.value = _upload((tmp_path / "ref.wav").read_bytes(), "ref.wav")
    assert studio.generate() is not None and studio.reference.ndim == 1
    assert "style_profile_similarity" not in studio.metrics and "content_similarity" in studio.metrics
    studio.style.value = "staccato"  # picking a named style again switches back
    assert studio.style_source.value == "named"
    studio.sample.value = "bwv269"
    assert studio.content_source.value == "sample"


def test_studio_user_mistakes_show_messages(studio):
    studio.generate()
    before = studio.result
    studio.upload.value = _upload(b"this is not midi", "broken.mid")
    assert ERROR in studio.status.value and "Could not read the upload" in studio.status.value
    assert "broken.mid" in studio.status.value
    studio.content_source.value = "upload"
    assert studio.generate() is None and "Upload a MIDI file first" in studio.status.value
    late = Piece([Note(4 * 48, 12, 60)], [TempoChange(0, 100.0)], name="late")  # its only note is in bar 5
    studio.upload.value = _upload(late.to_midi_bytes(), "late.mid")
    assert studio.generate() is None and "hold no notes" in studio.status.value
    studio.content_source.value = "sample"
    studio.sample.value = None
    studio.content_source.value = "sample"
    assert studio.generate() is None and "Pick a sample" in studio.status.value
    studio.sample.value = "bwv66.6"
    studio.style.value = None
    assert studio.generate() is None and "Pick a style" in studio.status.value
    studio.content_source.value, studio.corpus.value = "corpus", "bach/no-such-chorale"
    assert studio.generate() is None and "no-such-chorale" in studio.status.value
    studio.content_source.value = "sample"
    studio.reference_upload.value = _upload(b"not audio", "noise.wav")
    assert "Could not read the reference" in studio.status.value and "noise.wav" in studio.status.value
    studio.reference_upload.value = _upload(b"text", "notes.txt")
    assert "notes.txt: expected a MIDI file (.mid, .midi) or audio (.wav" in studio.status.value
    studio.style_source.value = "upload"
    assert studio.generate() is None and "Upload a reference" in studio.status.value
    assert studio.result is before
    studio.style_source.value, studio.style.value, studio.content_source.value = "named", "swing", "sample"


def test_studio_without_a_model_says_so():
    empty = TransferStudio(model=None)
    assert empty.generate() is None and "No model loaded" in empty.status.value
    missing = TransferStudio(model="no-such-checkpoint")
    assert ERROR in missing.status.value and "Could not load model" in missing.status.value
    assert missing.generate() is None and "No model loaded" in missing.status.value


def test_studio_reads_a_multitrack_song_and_checks_the_reference(tmp_path):
    """An uploaded song's drums are kept and laid back over the result, with the intake's account in the
    status; an uploaded reference is heard by the style encoder first, and speech is refused."""
    from mstoolkit.checkpoint import load_with_tokenizer
    from mstoolkit.recognize import StyleRecognizer
    from mstoolkit.shipped import shipped_path

    model, tokenizer, _ = load_with_tokenizer("demo")
    recognizer = StyleRecognizer.from_model(model, windows=3, held_out=2, cache_dir=tmp_path, progress=False)
    studio = TransferStudio(model=model, tokenizer=tokenizer, style="waltz", bars=2, recognizer=recognizer)
    chorale = load_piece(sample_paths()["bwv66.6"]).slice_bars(0, 4)
    bass = [Note(n.start, n.duration, n.pitch - 12, 90, program=33) for n in chorale.notes if n.pitch < 55]
    drums = [Note(12 * i, 3, 36 if i % 2 == 0 else 38, 100, program=0, is_drum=True) for i in range(16)]
    song = chorale.replace(notes=chorale.notes + bass + drums, name="song")
    studio.upload.value = _upload(song.to_midi_bytes(), "song.mid")
    assert ERROR not in studio.status.value and "drums kept unchanged" in studio.status.value
    assert studio.intake is not None and len(studio.intake.drums) == len(drums)
    result = studio.generate()
    assert result is not None and not any(n.is_drum for n in studio.content.notes)
    assert sorted((n.start, n.pitch) for n in result.notes if n.is_drum) == [(n.start, n.pitch) for n in drums[:8]]

    speech = shipped_path("audio", "speech_gettysburg.ogg")
    studio.reference_upload.value = _upload(speech.read_bytes(), "speech.ogg")
    assert ERROR in studio.status.value and "matches no known style" in studio.status.value
    assert studio.generate() is None and "matches no known style" in studio.status.value
    waltz = audio.render(render_style(load_piece(sample_paths()["bwv269"]).slice_bars(4, 4), "waltz"))
    audio.save_wav(tmp_path / "waltz.wav", 0.3 * waltz)
    studio.reference_upload.value = _upload((tmp_path / "waltz.wav").read_bytes(), "waltz.wav")
    assert ERROR not in studio.status.value and "hears waltz" in studio.status.value
    assert studio.generate() is not None
