"""Score a style-transfer system on StyleBench's fixed test split (what `mstoolkit bench` runs).

    >>> results = {name: run_bench(name) for name in ("identity", "oracle")}  # doctest: +SKIP
    >>> print(format_table(results))  # doctest: +SKIP

A system is ``"identity"`` (output = the content, unchanged), ``"oracle"`` (output = the target,
i.e. the style renderer itself) or any callable
``system(content, reference, reference_mel, style_b) -> Piece``. Every triplet's output is scored
with :func:`mstoolkit.metrics.score_pair`; style accuracy comes from a :class:`StyleClassifier`
trained on the train split's windows rendered in every style (cached with the build).
"""
from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Callable, Union

import numpy as np

from mstoolkit.data import (
    StyleBench, StyleBenchConfig, Triplet, _code_fingerprint, _piece_sha, _sha, build_stylebench, load_test_split,
)
from mstoolkit.piece import Piece

if TYPE_CHECKING:
    from mstoolkit.metrics import StyleClassifier

System = Callable[[Piece, Piece, np.ndarray, str], Piece]  # (content, reference, reference_mel, style_b) -> output
BASELINES = ("identity", "oracle")
# the table's row order; any other key score_pair returns follows in alphabetical order
MAIN_METRICS = (
    "style_accuracy", "note_f1", "note_precision", "note_recall", "dtw_similarity", "content_similarity",
    "style_profile_similarity", "swing_ratio_error",
)


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


def _output(system: Union[str, System], bench: StyleBench, t: Triplet) -> Piece:
    if system == "identity":
        return bench.content(t)
    if system == "oracle":
        return bench.target(t)
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
) -> dict[str, float]:
    """Mean scores of ``system`` over the triplets of ``split`` (the first ``limit`` of them).

    The triplets come from ``bench`` if given, else from the saved split ``manifest``, else from
    ``build_stylebench(config)`` (default config: the Bach chorales, 300 test triplets). Keys:
    ``style_accuracy``, ``note_f1``, ``dtw_similarity``, ``content_similarity``,
    ``style_profile_similarity``, ``swing_ratio_error`` (mean over swing targets only), the other
    :func:`~mstoolkit.metrics.score_pair` keys, ``n_triplets`` and ``classifier_test_accuracy``.

        >>> run_bench("oracle")["note_f1"]  # doctest: +SKIP
        1.0
    """
    from tqdm.auto import tqdm

    from mstoolkit.metrics import score_pair

    if isinstance(system, str) and system not in BASELINES:
        raise ValueError(f"system must be one of {BASELINES} or a callable, got {system!r}")
    if bench is None:
        bench = (load_test_split(manifest, cache_dir, progress=progress) if manifest is not None
                 else build_stylebench(config, cache_dir, progress=progress))
    if split not in bench.triplets:
        raise ValueError(f"split must be one of {sorted(bench.triplets)}, got {split!r}")
    triplets = bench.triplets[split][:limit]
    if not triplets:
        raise ValueError(f"the {split} split has no triplets to score")
    classifier, classifier_accuracy = style_classifier(bench, progress=progress)
    columns: dict[str, list[float]] = {}
    name = system if isinstance(system, str) else getattr(system, "__name__", "system")
    for t in tqdm(triplets, desc=f"scoring {name} on {split}", disable=not progress):
        output = _output(system, bench, t)
        scores = score_pair(output, bench.target(t), bench.content(t), bench.reference(t),
                            style=t.style_b, classifier=classifier)
        scores["style_accuracy"] = scores.pop("style_correct")
        for key, value in scores.items():
            if value is not None:  # e.g. swing_ratio_error exists only for swing targets
                columns.setdefault(key, []).append(float(value))
    results = {key: float(np.mean(values)) for key, values in columns.items()}
    results["n_triplets"] = len(triplets)
    results["classifier_test_accuracy"] = classifier_accuracy
    return results


def format_table(results: dict[str, dict[str, float]], digits: int = 3) -> str:
    """A markdown table: one row per measure, one column per system.

        >>> print(format_table({"identity": {"note_f1": 0.5}, "oracle": {"note_f1": 1.0}}))
        | measure | identity | oracle |
        | --- | ---: | ---: |
        | note_f1 | 0.500 | 1.000 |
    """
    keys = {k for scores in results.values() for k in scores}
    rows = [k for k in MAIN_METRICS if k in keys] + sorted(keys - set(MAIN_METRICS))

    def cell(value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return str(value) if isinstance(value, int) else f"{value:.{digits}f}"

    lines = ["| measure | " + " | ".join(results) + " |", "| --- |" + " ---: |" * len(results)]
    lines += [f"| {k} | " + " | ".join(cell(scores.get(k)) for scores in results.values()) + " |" for k in rows]
    return "\n".join(lines)
