"""TrainingDashboard: start, pause and stop a Trainer from the notebook; live curves, progress, audio.

Training runs in a background thread, so the kernel stays free while the model learns: the
:class:`~mstoolkit.train.Trainer` was built for that (``pause``/``unpause``/``stop`` act between
steps from any thread, callbacks report every step). The widgets are updated from the trainer's
callbacks; plotly figures are redrawn at most a few times per second so a fast run does not flood
the browser.
"""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go

from mstoolkit import audio, viz
from mstoolkit.config import UserError
from mstoolkit.piece import Piece, load_piece, sample_paths, samples_dir
from mstoolkit.styles import list_styles
from mstoolkit.train import TrainConfig, Trainer

from ._common import show_message

CURVES = ("loss", "lr", "tokens_per_s")  # the live series, one subplot each (val_loss joins the loss plot)
REDRAW_SECONDS = 0.3  # the figure is redrawn at most this often during a run (and always at the end)


def samples_config(preset: str = "debug", **overrides: Any) -> TrainConfig:
    """A training config on the six shipped chorales of ``data_samples/``: builds in seconds, offline.

    Four pieces train, two validate (split seed 0), 2-bar windows, three styles; the run folder is a
    fresh temporary directory unless ``out=`` is given. For a class demo, not for a useful model.

        >>> cfg = samples_config(max_steps=40)   # then TrainingDashboard(cfg)
    """
    data = {"corpus": str(samples_dir()), "styles": ("straight", "swing", "waltz"), "window_bars": 2,
            "max_windows_per_piece": 4, "split_fractions": (0.6, 0.4, 0.0), "seed": 0,
            "triplets_per_window": 3, "eval_triplets_per_window": 1}
    settings = {"max_steps": 60, "warmup_steps": 5, "eval_every": 20, "ckpt_every": 0, "eval_samples": 8,
                "out": tempfile.mkdtemp(prefix="mstoolkit-train-")}
    return TrainConfig.preset(preset, data=data, **{**settings, **overrides})


def parse_settings(text: str) -> dict[str, str]:
    """``"lr: 3e-4\\ndata.window_bars = 2"`` -> ``{"lr": "3e-4", "data.window_bars": "2"}`` (``#`` comments).

        >>> parse_settings("max_steps: 50  # short run")
        {'max_steps': '50'}
    """
    settings = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        sep = ":" if ":" in line and ("=" not in line or line.index(":") < line.index("=")) else "="
        key, found, value = line.partition(sep)
        if not found or not key.strip() or not value.strip():
            raise ValueError(f"settings line {number}: expected `key: value`, got {raw.strip()!r}")
        settings[key.strip()] = value.strip()
    return settings


class TrainingDashboard(w.VBox):
    """Start / pause / stop a :class:`~mstoolkit.train.Trainer`; live loss, learning rate and
    throughput, a progress bar, and every ``sample_every`` steps the current model's transfer of a
    short chorale, rendered to audio.

        >>> dash = TrainingDashboard(samples_config(max_steps=40)); dash   # then Start  # doctest: +SKIP

    ``config``: a TrainConfig, a preset name (``"debug"``: :func:`samples_config` of that preset) or
    a ``.yaml``/``.json`` file. The *Max steps*, *Learning rate* and *Settings* boxes override it
    (settings: one ``key: value`` per line, any ``mstoolkit train`` key). Training runs in a
    background thread (``background=False`` runs :meth:`start` to the end in the caller).

    State for scripts and tests: ``trainer``, ``config`` (of the current run), ``history`` (the
    plotted points), ``samples`` (list of ``(step, Piece, IPython Audio)``), ``figure``
    (FigureWidget), ``progress``, ``status``, ``running``; :meth:`wait` joins the run.
    """

    def __init__(self, config: TrainConfig | str | Path | None = None, *, sample_every: int = 20,
                 sample: str = "bwv66.6", sample_style: str = "swing", sample_bars: int = 2,
                 background: bool = True):
        self.base_config: TrainConfig | None = None
        self.background = background
        self.sample_name, self.sample_style, self.sample_bars = sample, sample_style, sample_bars
        self.trainer: Trainer | None = None
        self.config: TrainConfig | None = None
        self.samples: list[tuple[int, Piece, Any]] = []
        self.error: BaseException | None = None
        self.history: dict[str, list] = {k: [] for k in ("step", *CURVES, "eval_step", "val_loss")}
        self._thread: threading.Thread | None = None
        self._benches: dict[str, Any] = {}  # data config key -> StyleBench (a restart skips the build)
        self._sample_input: tuple[Piece, Any] | None = None  # (content, reference mel)
        self._last_draw = 0.0
        self._lock = threading.Lock()  # one redraw at a time (training thread vs the caller)

        wide = {"description_width": "120px"}
        self.max_steps = w.IntText(description="Max steps", style=wide, layout=w.Layout(width="220px"))
        self.lr = w.FloatText(description="Learning rate", style=wide, layout=w.Layout(width="240px"))
        self.sample_every = w.IntText(value=sample_every, description="Listen every", style=wide,
                                      layout=w.Layout(width="220px"), tooltip="steps between audio samples (0: off)")
        self.settings = w.Textarea(placeholder="more settings, one per line, e.g.\nwarmup_steps: 10\n"
                                   "data.window_bars: 2\nout: runs/my_run",
                                   layout=w.Layout(width="340px", height="84px"))
        self.resume = w.Checkbox(value=False, description="Resume from the run folder", indent=False)
        self.start_button = w.Button(description="Start", button_style="success", icon="play")
        self.pause_button = w.Button(description="Pause", icon="pause", disabled=True)
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, description="Step 0", style=wide,
                                      layout=w.Layout(width="60%"))
        self.status = w.HTML()
        self.sample_box = w.HTML()
        self.figure = go.FigureWidget(self._empty_figure())
        self.start_button.on_click(lambda _: self.start())
        self.pause_button.on_click(lambda _: self.toggle_pause())
        self.stop_button.on_click(lambda _: self.stop())
        controls = w.HBox([w.VBox([self.max_steps, self.lr, self.sample_every]),
                           w.VBox([self.settings, self.resume]),
                           w.VBox([self.start_button, self.pause_button, self.stop_button])])
        super().__init__([controls, self.progress, self.status, self.figure,
                          w.HTML("<b>The current model plays</b> (a transfer of a short chorale):"), self.sample_box])
        self.set_config(config)

    # -------------------------------------------------------------- configuration
    def set_config(self, config: TrainConfig | str | Path | None) -> None:
        """Use ``config`` as the base of the next run (fills the boxes); a bad one shows a message."""
        try:
            if config is None or (isinstance(config, str) and config in ("debug", "tiny", "base")):
                config = samples_config(config or "debug")
            elif isinstance(config, (str, Path)):
                config = TrainConfig.load(config)
            elif not isinstance(config, TrainConfig):
                raise ValueError(f"expected a TrainConfig, a preset name or a config file, got {type(config).__name__}")
        except ValueError as err:
            show_message(self.status, f"Bad training config: {err}", error=True)
            return
        self.base_config = config
        self.max_steps.value, self.lr.value = config.max_steps, config.lr
        show_message(self.status, f"Ready: model {config.model_preset}, {config.max_steps} steps, run folder "
                     f"{config.out}. Press Start.")

    def build_config(self) -> TrainConfig:
        """The base config with the boxes applied; ValueError naming the key on a bad value."""
        if self.base_config is None:
            raise ValueError("no training config: give TrainingDashboard a TrainConfig, a preset or a file")
        overrides: dict[str, Any] = {"max_steps": self.max_steps.value, "lr": self.lr.value}
        overrides.update(parse_settings(self.settings.value))
        return self.base_config.with_overrides(overrides)

    # -------------------------------------------------------------- controls
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start training (or continue a stopped run of the same config) in a background thread."""
        if self.running:
            show_message(self.status, "Training is already running: pause or stop it first.", error=True)
            return
        try:
            config = self.build_config()
            if self.sample_style not in list_styles():
                raise ValueError(f"sample_style {self.sample_style!r} is not a style ({', '.join(list_styles())})")
        except ValueError as err:
            show_message(self.status, f"Bad training config: {err}", error=True)
            return
        self.error = None
        self._set_buttons(running=True)
        self._thread = threading.Thread(target=self._run, args=(config,), name="mstoolkit-training", daemon=True)
        if self.background:
            self._thread.start()
        else:
            self._thread.run()  # the same code in the caller's thread

    def toggle_pause(self) -> None:
        """Pause after the current step, or continue a paused run."""
        if self.trainer is None or not self.running:
            show_message(self.status, "Nothing to pause: training is not running.", error=True)
            return
        if self.trainer.paused:
            self.trainer.unpause()
            self.pause_button.description, self.pause_button.icon = "Pause", "pause"
            show_message(self.status, f"Training again from step {self.trainer.step}.")
        else:
            self.trainer.pause()
            self.pause_button.description, self.pause_button.icon = "Continue", "play"
            show_message(self.status, f"Paused after step {self.trainer.step}: press Continue or Stop.")

    def stop(self) -> None:
        """Stop after the current step; the trainer writes a checkpoint first. Start continues the run."""
        if self.trainer is None or not self.running:
            show_message(self.status, "Nothing to stop: training is not running.", error=True)
            return
        self.trainer.stop()
        show_message(self.status, f"Stopping after step {self.trainer.step} (writing a checkpoint)...")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (or ``timeout`` seconds); True if it has ended."""
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        return not self.running

    def static_figure(self, title: str | None = "training curves") -> go.Figure:
        """:func:`mstoolkit.viz.training_curves` of the steps so far (a plain figure for export)."""
        return viz.training_curves({k: self.history[k] for k in ("step", *CURVES)}, title=title)

    # -------------------------------------------------------------- the run (training thread)
    def _run(self, config: TrainConfig) -> None:
        try:
            same_run = (self.trainer is not None and self.config == config
                        and self.trainer.step < config.max_steps and not self.resume.value)
            if not same_run:
                self._new_trainer(config)
            trainer = self.trainer
            show_message(self.status, f"Training {config.model_preset} from step {trainer.step} to "
                         f"{config.max_steps} (run folder {config.out})...")
            t0 = time.perf_counter()
            trainer.fit()
            self._redraw(force=True)
            seconds = time.perf_counter() - t0
            where = f"checkpoint {trainer.last_checkpoint}" if trainer.last_checkpoint else "no checkpoint"
            if trainer.step >= config.max_steps:
                show_message(self.status, f"Finished: {trainer.step} steps ({seconds:.1f} s), final loss "
                             f"{trainer.history['loss'][-1]:.3f}; {where}.")
            else:
                show_message(self.status, f"Stopped at step {trainer.step} ({where}); Start continues the run.")
        except Exception as err:  # noqa: BLE001 - any failure (data, config, NaN loss) becomes a message
            self.error = err
            hint = ("; tick 'Resume from the run folder' to continue it, or set another `out:`."
                    if "already holds a training run" in str(err) else "")
            what = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"  # a bug names its type
            show_message(self.status, f"Training failed: {what}{hint}", error=True)
        finally:
            self._set_buttons(running=False)

    def _new_trainer(self, config: TrainConfig) -> None:
        show_message(self.status, f"Preparing StyleBench data ({config.data.corpus}) and the "
                     f"{config.model_preset} model...")
        key = f"{config.data.key()}:{config.cache_dir}"
        trainer = Trainer(config, bench=self._benches.get(key), progress=False, on_step=self._on_step,
                          on_eval=self._on_eval)
        self._benches[key] = trainer.bench
        if self.resume.value:
            folder = trainer.load_checkpoint()
            show_message(self.status, f"Resumed from {folder} at step {trainer.step}.")
        self.trainer, self.config, self.samples = trainer, config, []
        self.history = {k: [] for k in self.history}
        for key in ("step", *CURVES):  # a resumed run shows its past
            self.history[key] = list(trainer.history[key])
        self.history["eval_step"], self.history["val_loss"] = list(trainer.history["eval_step"]), \
            list(trainer.history["val_loss"])
        self.progress.max, self.progress.value = config.max_steps, trainer.step
        self._sample_input = None
        self._redraw(force=True)

    def _on_step(self, trainer: Trainer, metrics: dict) -> None:
        for key in ("step", *CURVES):
            self.history[key].append(metrics[key])
        step, last = metrics["step"], trainer.config.max_steps
        if self._redraw(force=step == last):  # the labels follow the figure's pace
            self.progress.value, self.progress.description = step, f"Step {step}"
            left = (last - step) * metrics["seconds"]
            show_message(self.status, f"Step {step}/{last}: loss {metrics['loss']:.3f}, lr {metrics['lr']:.2e}, "
                         f"{metrics['tokens_per_s']:,.0f} target tokens/s, about {left:.0f} s left.")
        every = self.sample_every.value
        if every > 0 and metrics["step"] % every == 0:
            self._play_sample(trainer, metrics["step"])

    def _on_eval(self, trainer: Trainer, metrics: dict) -> None:
        if metrics.get("val_loss") is not None:
            self.history["eval_step"].append(metrics["step"])
            self.history["val_loss"].append(metrics["val_loss"])
            self._redraw(force=True)

    def _play_sample(self, trainer: Trainer, step: int) -> None:
        """Transfer the sample's first bars with the model as it is now; a failure is only reported."""
        import torch

        from mstoolkit.data import style_reference
        from mstoolkit.generate import reference_mel, transfer

        try:
            if self._sample_input is None:
                content = load_piece(sample_paths()[self.sample_name]).slice_bars(0, self.sample_bars)
                reference = style_reference(self.sample_style, avoid=self.sample_name)
                self._sample_input = (content, reference_mel(reference, n_mels=trainer.model.config.n_mels))
            content, mel = self._sample_input
            trainer.model.eval()  # no dropout; train_step puts it back in train mode
            with torch.random.fork_rng(devices=[]):  # leave the training RNG (dropout) untouched
                piece = transfer(model=trainer.model, tokenizer=trainer.tokenizer, content=content, reference=mel,
                                 temperature=0.9, top_p=0.95, seed=0)
            trainer.model.train()
        except Exception as err:  # noqa: BLE001 - a failed sample must not stop the training run
            self.sample_box.value = f"<i>step {step}: no audio sample ({type(err).__name__}: {err})</i>"
            return
        if not len(piece):
            self.samples.append((step, piece, None))
            self.sample_box.value = f"<b>Step {step}</b>: the model wrote no notes yet."
            return
        player = audio.play(piece)
        self.samples.append((step, piece, player))
        recent = [(s, a) for s, _, a in self.samples[-3:] if a is not None][::-1]
        self.sample_box.value = "".join(f"<div><b>Step {s}</b> ({self.sample_name}, {self.sample_style}): "
                                        f"{a._repr_html_()}</div>" for s, a in recent)

    # -------------------------------------------------------------- drawing
    def _empty_figure(self) -> go.Figure:
        fig = viz.training_curves({"step": [], **{k: [] for k in CURVES}}, title="live training curves")
        fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name="val_loss"), row=1, col=1)
        return fig

    def _redraw(self, force: bool = False) -> bool:
        """Redraw the curves if ``force`` or the last redraw is old enough; True if it redrew."""
        now = time.monotonic()
        if not force and now - self._last_draw < REDRAW_SECONDS:
            return False
        with self._lock:
            self._last_draw = now
            traces = {t.name: t for t in self.figure.data}
            with self.figure.batch_update():
                for key in CURVES:
                    traces[key].x, traces[key].y = list(self.history["step"]), list(self.history[key])
                traces["val_loss"].x = list(self.history["eval_step"])
                traces["val_loss"].y = list(self.history["val_loss"])
        if self.trainer is not None:
            self.progress.value = self.trainer.step
            self.progress.description = f"Step {self.trainer.step}"
        return True

    def _set_buttons(self, running: bool) -> None:
        self.start_button.disabled = running
        self.pause_button.disabled = self.stop_button.disabled = not running
        self.pause_button.description, self.pause_button.icon = "Pause", "pause"
