"""The files that ship with mstoolkit: the sample MIDI files, the demo checkpoint, StyleBench's manifests.

They live in the repository's top-level ``data_samples/`` folder, which is installed as the package
``mstoolkit.data_samples`` (``pyproject.toml`` maps the folder there, as it maps ``widgets/`` to
``mstoolkit.widgets``). Every lookup of a shipped file goes through :func:`shipped_path`, which asks
Python's import system where that package is: the same answer for a wheel in site-packages, an
editable install (``pip install -e .``) and a checkout, and never the current directory.

    >>> shipped_path("checkpoints", "demo", "config.json").is_file()
    True
    >>> shipped_path("stylebench", "test_split_v1.json").name
    'test_split_v1.json'
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "mstoolkit.data_samples"

# The shipped checkpoint every entry point opens when none is named: the CLI's demo, transfer and studio,
# LiveSession and the widgets (one place, so a better model is one line away). demo_v2 (the demo trained
# further on StyleBench v2, redrawn reference instruments, rooms and registers, and re-barred meters) is
# better than the chorale-only demo on the chorales (v1 test note F1 0.764 vs 0.668) and far better on
# other music, other meters and recorded references: data_samples/checkpoints/demo_v2/README.md.
DEFAULT_MODEL = "demo_v2"


def shipped_root() -> Path:
    """The folder of the package ``mstoolkit.data_samples`` (the repository's ``data_samples/``)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except ImportError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    # A checkout imported straight from its folder (PYTHONPATH=.), or an editable install made before
    # the folder was mapped into the package: the folder beside the package's own.
    checkout = Path(__file__).resolve().parent.parent / "data_samples"
    if (checkout / "__init__.py").is_file():
        return checkout
    raise FileNotFoundError(f"mstoolkit's shipped files (the package {PACKAGE}) are not installed; reinstall "
                            "mstoolkit (pip install mstoolkit, or pip install -e . in the repository)")


def shipped_path(*parts: str) -> Path:
    """The shipped file or folder ``parts`` (e.g. ``"checkpoints", "demo"``) inside :func:`shipped_root`.

    Raises FileNotFoundError naming what the folder holds when nothing of that name is shipped.

        >>> shipped_path("checkpoints", "no-such-model")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: mstoolkit ships no 'checkpoints/no-such-model' ... (there: ...demo...)
    """
    root = shipped_root()
    path = root.joinpath(*parts)
    if not path.exists():
        parent = path.parent
        there = sorted(p.name for p in parent.iterdir() if not p.name.startswith(("_", "."))) if parent.is_dir() \
            else []
        raise FileNotFoundError(f"mstoolkit ships no {'/'.join(parts)!r} in {root} "
                                f"(there: {', '.join(there) or 'nothing'})")
    return path
