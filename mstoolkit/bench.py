"""Score a style-transfer system on StyleBench's fixed test split (what `mstoolkit bench` runs).

    >>> results = {name: run_bench(name) for name in ("identity", "oracle")}  # doctest: +SKIP
    >>> print(format_table(results))  # doctest: +SKIP

A system is ``"identity"`` (output = the content, unchanged), ``"oracle"`` (output = the target,
i.e. the style renderer applied to the original window), ``"rule"`` (the target style's renderer
applied to the *content* as given: what a system that knows the rules perfectly can recover from the
content alone; where the content is an accompaniment style, the original inner voices are gone, so
this is the practical ceiling of any system that reads only the content) or any callable
``system(content, reference, reference_mel, style_b) -> Piece``, such as a model wrapped by
:func:`transfer_system`. Every triplet's output is scored
with :func:`mstoolkit.metrics.score_pair`; style accuracy comes from a :class:`StyleClassifier`
trained on the train split's windows rendered in every style (cached with the build). Besides the
means, a run reports where the output notes went wrong (:func:`mstoolkit.metrics.error_breakdown`,
as shares of all output notes) and, with ``by_style=True``, the same by target and by source style
(:func:`format_style_table`).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

import numpy as np

from mstoolkit.config import TRANSFER_TEMPERATURE, UserError
from mstoolkit.data import (
    HELD_OUT_FROM, REFERENCE_BARS, StyleBench, StyleBenchConfig, Triplet, _code_fingerprint, _piece_sha, _sha,
    build_stylebench, cut_windows, load_test_split,
)
from mstoolkit.piece import Piece
from mstoolkit.styles import render_style

if TYPE_CHECKING:
    from mstoolkit.metrics import StyleClassifier

System = Callable[[Piece, Piece, np.ndarray, str], Piece]  # (content, reference, reference_mel, style_b) -> output
BASELINES = ("identity", "oracle", "rule")
# the table's row order; any other key score_pair returns follows in alphabetical order
MAIN_METRICS = (
    "style_accuracy", "note_f1", "note_precision", "note_recall", "dtw_similarity", "content_similarity",
    "style_profile_similarity", "swing_ratio_error",
    # the error breakdown: shares of all output notes (the five sum to 1), then missed target notes
    "share_exact", "share_octave", "share_wrong_pitch", "share_timing", "share_other", "share_missed",
    "notes_output", "notes_target",
)
# the columns of the tables by style, and what each group's dict holds
STYLE_METRICS = (
    "n_triplets", "style_accuracy", "note_f1", "dtw_similarity", "content_similarity",
    "share_exact", "share_octave", "share_wrong_pitch", "share_timing", "share_other",
)
# result key -> (the Triplet field it groups by, its label)
GROUPS = {"by_target_style": ("style_b", "target style"), "by_source_style": ("style_a", "source style")}


def style_classifier(bench: StyleBench, *, progress: bool = True) -> tuple[StyleClassifier, float]:
    """``(classifier, test_accuracy)``: trained on train windows x every style, tested on test windows.

    Cached as JSON in ``bench.folder``, under a name that hashes the windows and the source of
    ``styles.py`` and ``metrics.py``, so changed data or code trains a new classifier.

        >>> clf, acc = style_classifier(bench)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from mstoolkit import metrics

    styles = bench.styles
    train = bench.window_ids("train")
    if not train:  # a held-out collection: the classifier of the build it is held out from
        return _held_out_classifier(bench, progress=progress)
    windows = [(w, _piece_sha(bench.windows[w])) for w in train + bench.window_ids("test")]
    code = [_code_fingerprint(m) for m in ("mstoolkit.styles", "mstoolkit.metrics")]
    key = _sha(styles, bench.config.seed, windows, *code)[:12]
    path, info_path = bench.folder / f"style_classifier_{key}.json", bench.folder / f"style_classifier_{key}.info.json"
    if path.exists() and info_path.exists():
        try:
            return metrics.StyleClassifier.load(path), json.loads(info_path.read_text())["test_accuracy"]
        except (ValueError, KeyError):
            pass  # stale or foreign file: train again below

    def rendered(split: str) -> list[tuple[Piece, str]]:
        ids = tqdm(bench.window_ids(split), desc=f"rendering {split} windows", disable=not progress)
        return [(bench.render(w, s), s) for w in ids for s in styles]

    classifier = metrics.train_style_classifier(rendered("train"))
    test_pairs = rendered("test")
    accuracy = classifier.accuracy(test_pairs)
    bench.folder.mkdir(parents=True, exist_ok=True)
    classifier.save(path)
    info = {"test_accuracy": accuracy, "n_train": len(train) * len(styles), "n_test": len(test_pairs)}
    info_path.write_text(json.dumps(info))
    return classifier, accuracy


def _held_out_classifier(bench: StyleBench, *, progress: bool) -> tuple[StyleClassifier, float]:
    """The style classifier of the build ``bench`` is held out from (``data.HELD_OUT_FROM``), and its
    accuracy on ``bench``'s test windows x every style (cached in ``bench.folder``)."""
    from tqdm.auto import tqdm

    source = HELD_OUT_FROM.get(bench.config.corpus)
    if source is None:
        raise UserError(f"StyleBench {bench.config.corpus!r} has no train split to train the style classifier on, "
                        f"and is not a held-out collection of another build ({sorted(HELD_OUT_FROM)})")
    donor_config = dataclasses.replace(bench.config, corpus=source, split_fractions=StyleBenchConfig().split_fractions)
    classifier, _ = style_classifier(build_stylebench(donor_config, bench.cache_dir, progress=progress),
                                     progress=progress)
    test = bench.window_ids("test")
    key = _sha(source, [(w, _piece_sha(bench.windows[w])) for w in test],
               *[_code_fingerprint(m) for m in ("mstoolkit.styles", "mstoolkit.metrics")])[:12]
    info_path = bench.folder / f"held_out_accuracy_{key}.json"
    if info_path.exists():
        return classifier, json.loads(info_path.read_text())["test_accuracy"]
    pairs = [(bench.render(w, s), s) for w in tqdm(test, desc="rendering held-out windows", disable=not progress)
             for s in bench.styles]
    accuracy = classifier.accuracy(pairs)
    bench.folder.mkdir(parents=True, exist_ok=True)
    info_path.write_text(json.dumps({"test_accuracy": accuracy, "classifier_from": source, "n_test": len(pairs)}))
    return classifier, accuracy


def transfer_system(model: Any, tokenizer: Any, *, temperature: float = TRANSFER_TEMPERATURE,
                    top_p: float | None = 0.95, top_k: int | None = None, seed: int | None = 0,
                    zero_style: bool = False, harmony_window: float | None = None, beam_size: int = 1,
                    content_style: str | None = None, unique_notes: bool = True) -> System:
    """A model as a system :func:`run_bench` scores: ``(content, reference, reference_mel, style_b) ->
    Piece`` by :func:`mstoolkit.generate.transfer` (triplet ``i`` sampled with seed ``seed + i``).
    ``zero_style`` replaces the style vector by zeros (the "does it use the reference?" ablation);
    ``harmony_window`` keeps the content's harmony, ``beam_size`` searches a beam and ``unique_notes=False``
    lets an instrument start one pitch twice at one onset (``transfer``'s arguments).
    ``content_style``: None (default) gives the model each triplet's content as StyleBench defines it, a
    rendering in the source style, exactly what training showed it and what the identity and rule
    baselines read; ``"straight"`` first re-renders it straight, as ``transfer`` does to a user's raw file
    (which changes the input: staccato content becomes legato strings; the demo model on the first 100
    validation triplets scores note F1 0.712 as given and 0.672 re-rendered).

        >>> run_bench(transfer_system(model, tokenizer), limit=20)  # greedy, as transfer  # doctest: +SKIP
    """
    import torch

    from mstoolkit.generate import transfer

    calls = iter(range(1 << 62))

    def system(content, reference, reference_mel, style_b):
        i = next(calls)
        hook = model.style_encoder.register_forward_hook(lambda m, a, out: torch.zeros_like(out)) if zero_style else None
        try:
            return transfer(model, tokenizer, content, reference_mel, temperature=temperature, top_p=top_p,
                            top_k=top_k, seed=None if seed is None else seed + i, harmony_window=harmony_window,
                            beam_size=beam_size, content_style=content_style, unique_notes=unique_notes)
        finally:
            if hook is not None:
                hook.remove()

    system.__name__ = "model"
    return system


@functools.lru_cache(maxsize=1)
def sample_style_classifier() -> StyleClassifier | None:
    """A style classifier trained on the shipped samples' first three 4-bar windows each, rendered in
    every style (about a second; cached for the process). None if scikit-learn is not installed.

    :func:`style_classifier` needs a StyleBench build of the full corpus; this small one answers
    "which style does this sound like?" offline (the Transfer Studio, :func:`mstoolkit.metrics.score_transfer`).

        >>> sample_style_classifier().predict([style_reference("waltz")])  # doctest: +SKIP
        ['waltz']
    """
    from mstoolkit import metrics
    from mstoolkit.piece import load_piece, sample_paths
    from mstoolkit.styles import list_styles

    try:
        import sklearn  # noqa: F401 - metrics.train_style_classifier needs it
    except ImportError:
        return None
    windows = [window for path in sample_paths().values()
               for _, window in cut_windows(load_piece(path), REFERENCE_BARS, max_windows=3)]
    return metrics.train_style_classifier([(render_style(window, style), style) for window in windows
                                           for style in list_styles()])


def _output(system: Union[str, System], bench: StyleBench, t: Triplet) -> Piece:
    if system == "identity":
        return bench.content(t)
    if system == "oracle":
        return bench.target(t)
    if system == "rule":
        return render_style(bench.content(t), t.style_b)
    output = system(bench.content(t), bench.reference(t), bench.reference_mel(t), t.style_b)
    if not isinstance(output, Piece):
        raise ValueError(f"system returned {type(output).__name__} for triplet {t}, expected a Piece")
    return output


def run_bench(
    system: Union[str, System],
    split: str = "test",
    config: StyleBenchConfig | None = None,
    limit: int | None = None,
    *,
    bench: StyleBench | None = None,
    manifest: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    by_style: bool = False,
) -> dict[str, Any]:
    """Scores of ``system`` over the triplets of ``split`` (the first ``limit`` of them).

    The triplets come from ``bench`` if given, else from the saved split ``manifest``, else from
    ``build_stylebench(config)`` (default config: the Bach chorales, 300 test triplets). Keys (see
    :func:`summarize`): the means ``style_accuracy``, ``note_f1``, ``dtw_similarity``,
    ``content_similarity``, ``style_profile_similarity``, ``swing_ratio_error`` (over swing
    targets only) and the other :func:`~mstoolkit.metrics.score_pair` keys; the error breakdown
    ``share_exact`` ... ``share_other`` (shares of all output notes), ``share_missed`` (of all
    target notes), ``notes_output``, ``notes_target``; ``n_triplets`` and
    ``classifier_test_accuracy``. With ``by_style``, also ``by_target_style`` and
    ``by_source_style``: ``{style: {measure: value}}`` with the :data:`STYLE_METRICS` of that
    style's triplets (for :func:`format_style_table`).

        >>> run_bench("oracle")["note_f1"]  # doctest: +SKIP
        1.0
    """
    from tqdm.auto import tqdm

    from mstoolkit.metrics import score_pair

    if isinstance(system, str) and system not in BASELINES:
        raise UserError(f"system must be one of {BASELINES} or a callable, got {system!r}")
    if bench is None:
        bench = (load_test_split(manifest, cache_dir, progress=progress) if manifest is not None
                 else build_stylebench(config, cache_dir, progress=progress))
    if split not in bench.triplets:
        raise UserError(f"split must be one of {sorted(bench.triplets)}, got {split!r}")
    triplets = bench.triplets[split][:limit]
    if not triplets:
        raise UserError(f"the {split} split has no triplets to score")
    classifier, classifier_accuracy = style_classifier(bench, progress=progress)
    rows: list[dict[str, float | None]] = []
    name = system if isinstance(system, str) else getattr(system, "__name__", "system")
    for t in tqdm(triplets, desc=f"scoring {name} on {split}", disable=not progress):
        output = _output(system, bench, t)
        scores = score_pair(output, bench.target(t), bench.content(t), bench.reference(t),
                            style=t.style_b, classifier=classifier)
        scores["style_accuracy"] = scores.pop("style_correct")
        rows.append(scores)
    results: dict[str, Any] = summarize(rows)
    results["classifier_test_accuracy"] = classifier_accuracy
    if by_style:
        for key, (field, _) in GROUPS.items():
            styles = [s for s in bench.styles if any(getattr(t, field) == s for t in triplets)]
            groups = {s: summarize([r for r, t in zip(rows, triplets) if getattr(t, field) == s]) for s in styles}
            results[key] = {s: {k: g[k] for k in STYLE_METRICS if k in g} for s, g in groups.items()}
    return results


def summarize(rows: Sequence[Mapping[str, float | None]]) -> dict[str, float]:
    """One system's scores from its per-triplet :func:`~mstoolkit.metrics.score_pair` rows.

    Each measure is the mean over the triplets that have it (``swing_ratio_error`` exists only for
    swing targets). The ``notes_*`` counts are summed instead and give the error breakdown as
    shares of *all* output notes (``share_exact`` ... ``share_other``, summing to 1; a mean of
    per-triplet shares would let a 3-note output weigh as much as a 60-note one), ``share_missed``
    over all target notes, and the totals ``notes_output`` and ``notes_target``.

        >>> summarize([{"note_f1": 1.0, "notes_output": 1, "notes_exact": 1, "notes_octave": 0,
        ...             "notes_wrong_pitch": 0, "notes_timing": 0, "notes_other": 0, "notes_target": 1,
        ...             "notes_missed": 0},
        ...            {"note_f1": 0.0, "notes_output": 3, "notes_exact": 0, "notes_octave": 0,
        ...             "notes_wrong_pitch": 3, "notes_timing": 0, "notes_other": 0, "notes_target": 2,
        ...             "notes_missed": 2}])["share_wrong_pitch"]
        0.75
    """
    from mstoolkit.metrics import error_shares

    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if value is not None:
                columns.setdefault(key, []).append(float(value))
    counts = {k.removeprefix("notes_"): int(sum(columns.pop(k))) for k in list(columns) if k.startswith("notes_")}
    results: dict[str, float] = {key: float(np.mean(values)) for key, values in columns.items()}
    if counts:
        counts["n_output"], counts["n_target"] = counts.pop("output"), counts.pop("target")
        results.update({f"share_{k}": v for k, v in error_shares(counts).items()})
        results["notes_output"], results["notes_target"] = counts["n_output"], counts["n_target"]
    results["n_triplets"] = len(rows)
    return results


def _cell(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def format_table(results: dict[str, dict[str, Any]], digits: int = 3) -> str:
    """A markdown table: one row per measure, one column per system (the tables by style of
    ``run_bench(..., by_style=True)`` are left to :func:`format_style_table`).

        >>> print(format_table({"identity": {"note_f1": 0.5}, "oracle": {"note_f1": 1.0}}))
        | measure | identity | oracle |
        | --- | ---: | ---: |
        | note_f1 | 0.500 | 1.000 |
    """
    keys = {k for scores in results.values() for k, v in scores.items() if not isinstance(v, dict)}
    rows = [k for k in MAIN_METRICS if k in keys] + sorted(keys - set(MAIN_METRICS))
    lines = ["| measure | " + " | ".join(results) + " |", "| --- |" + " ---: |" * len(results)]
    lines += [f"| {k} | " + " | ".join(_cell(scores.get(k), digits) for scores in results.values()) + " |"
              for k in rows]
    return "\n".join(lines)


def format_style_table(groups: dict[str, dict[str, Any]], by: str = "target style",
                       overall: dict[str, Any] | None = None, digits: int = 3) -> str:
    """A markdown table of one system by style: one row per style, one column per measure of
    :data:`STYLE_METRICS`; ``overall`` (the run's own results) adds a last row ``all``.

        >>> results = run_bench("identity", by_style=True)  # doctest: +SKIP
        >>> print(format_style_table({"swing": {"n_triplets": 2, "note_f1": 0.5}}))
        | target style | n_triplets | note_f1 |
        | --- | ---: | ---: |
        | swing | 2 | 0.500 |
    """
    rows = dict(groups) if overall is None else {**groups, "all": overall}
    columns = [k for k in STYLE_METRICS if any(k in scores for scores in rows.values())]
    lines = [f"| {by} | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    lines += [f"| {style} | " + " | ".join(_cell(scores.get(k), digits) for k in columns) + " |"
              for style, scores in rows.items()]
    return "\n".join(lines)
