"""The modules' imports run one way: piece <- tokenizer/styles/audio <- data; model <- checkpoint <-
generate <- bench <- train <- cli / widgets (the README's architecture section).

Checked twice: statically over every import, load-time and deferred (``tests/import_graph.py``), and
at run time in fresh interpreters (what ``import x`` really loads).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from import_graph import cycles, import_graph

# Bottom to top: a module may import only modules of lower layers.
LAYERS = (
    ("config", "losses", "shipped"),  # stdlib / torch only
    ("piece",),
    ("tokenizer", "styles", "audio", "miditok_adapter", "intake", "augment", "harmony",
     "unique_notes"),
    ("mstoolkit", "metrics", "model"),  # "mstoolkit": the package's __init__ (piece, tokenizer)
    ("data", "viz"),
    ("checkpoint",),
    ("generate",),
    ("bench", "live", "recognize"),
    ("train",),
    ("studio", "widgets/_common"),
    ("cli", "widgets", "widgets/*"),  # the widget modules
)
# Deferred imports that run against the layers, each with its reason. model.py's conveniences
# MusicStyleTransformer.from_pretrained / save_pretrained (checkpoint) and .generate / .transfer
# (generate) import their module when called; they are kept for the API's sake (and model.py is not
# this change's to edit). Nothing else may be added here without a reason as good.
ALLOWED_UPWARD = {("model", "checkpoint"), ("model", "generate")}


def _short(module: str) -> str:
    return module.removeprefix("mstoolkit.").replace("widgets.", "widgets/")


def _layer(module: str) -> int:
    name = _short(module)
    for i, layer in enumerate(LAYERS):
        if name in layer or (name.startswith("widgets/") and "widgets/*" in layer):
            return i
    raise AssertionError(f"{name}: not in LAYERS; give the new module its place in tests/test_layers.py")


GRAPH = import_graph()


def test_every_module_has_a_layer():
    for module in GRAPH:
        _layer(module)


def test_imports_point_down_the_layers():
    wrong = []
    for module, edges in GRAPH.items():
        for kind in ("load", "deferred"):
            for target in edges[kind]:
                if _layer(target) >= _layer(module) and (_short(module), _short(target)) not in ALLOWED_UPWARD:
                    wrong.append(f"{_short(module)} -> {_short(target)} ({kind})")
    assert not wrong, "imports against the layers: " + ", ".join(sorted(wrong))


def test_no_cycle_at_load_time_and_only_the_named_deferred_ones():
    assert cycles(GRAPH, ("load",)) == []
    allowed = {m for pair in ALLOWED_UPWARD for m in pair}
    for cycle in cycles(GRAPH, ("load", "deferred")):
        assert {_short(m) for m in cycle} <= allowed, cycle


def test_the_library_never_imports_the_widgets():
    for module, edges in GRAPH.items():
        if not module.startswith("mstoolkit.widgets"):
            assert not any(t.startswith("mstoolkit.widgets") for t in edges["load"] | edges["deferred"]), module


def _loaded_after(code: str) -> set[str]:
    """The mstoolkit modules loaded after running ``code`` in a fresh interpreter."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'mstoolkit')))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


PACKAGE = {"mstoolkit", "mstoolkit.config", "mstoolkit.piece", "mstoolkit.tokenizer"}  # what `import mstoolkit` loads


def test_import_mstoolkit_loads_only_its_light_modules():
    assert _loaded_after("import mstoolkit") <= PACKAGE


def test_import_model_loads_only_losses():
    assert _loaded_after("import mstoolkit.model") - PACKAGE == {"mstoolkit.model", "mstoolkit.losses"}


@pytest.mark.parametrize("code", [
    "import mstoolkit.checkpoint",
    "from mstoolkit.checkpoint import load_with_tokenizer; load_with_tokenizer('demo')",  # what a widget does
    "import mstoolkit.generate",
])
def test_opening_a_model_or_generating_does_not_load_the_trainer_or_the_data(code):
    loaded = _loaded_after(code)
    assert not loaded & {"mstoolkit.train", "mstoolkit.data", "mstoolkit.bench"}, sorted(loaded)
