"""Install anywhere: the shipped files (samples, demo checkpoint, StyleBench split, studio app) are
found through the package, from any current folder, and a wheel built from the repository carries
them. (.ci/wheel_check.sh goes further: it installs that wheel into a fresh virtual environment
outside the repository and uses it from another folder.)"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import mstoolkit
from mstoolkit import shipped
from mstoolkit.checkpoint import load_pretrained, resolve
from mstoolkit.cli import build_parser, main
from mstoolkit.piece import sample_paths, samples_dir

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_files_are_found_through_the_package_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may depend on the current folder
    spec = importlib.util.find_spec("mstoolkit.data_samples")
    assert spec is not None and spec.origin, "data_samples/ is not installed as the package mstoolkit.data_samples"
    package_dir = Path(spec.origin).resolve().parent
    assert shipped.shipped_root() == package_dir == samples_dir()
    assert resolve("demo") == package_dir / "checkpoints" / "demo"
    assert (resolve("demo") / "model.safetensors").is_file() and (resolve("demo") / "tokenizer.json").is_file()
    assert load_pretrained("demo").config.vocab_size > 0
    assert sample_paths() and all(p.parent == package_dir for p in sample_paths().values())
    assert shipped.shipped_path("stylebench", "test_split_v1.json").is_file()


def test_a_name_that_is_not_shipped_says_what_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"ships no 'checkpoints/no-such-model' .*\(there: copy, demo, demo_v2\)"):
        shipped.shipped_path("checkpoints", "no-such-model")
    with pytest.raises(FileNotFoundError, match=r"'no-such-model'.*available: \['copy', 'demo', 'demo_v2'\]"):
        load_pretrained("no-such-model")


def test_without_the_package_a_checkout_is_used_and_else_the_error_says_reinstall(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    assert shipped.shipped_root() == ROOT / "data_samples"  # PYTHONPATH=. in a checkout
    monkeypatch.setattr(shipped, "__file__", str(tmp_path / "mstoolkit" / "shipped.py"))
    with pytest.raises(FileNotFoundError, match="mstoolkit.data_samples.*not installed.*pip install"):
        shipped.shipped_root()


def test_package_data_names_every_shipped_file():
    """What pyproject's package-data globs pick from data_samples/ and widgets/ is everything there but
    their modules (which ship as modules), so nothing added to those folders is left out of the wheel."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["mstoolkit.data_samples"] == "data_samples"
    assert "mstoolkit.data_samples" in config["packages"]
    for package, folder in (("mstoolkit.data_samples", ROOT / "data_samples"), ("mstoolkit.widgets", ROOT / "widgets")):
        picked = {p for pattern in config["package-data"].get(package, []) for p in folder.glob(pattern)}
        present = {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"}
        assert present == picked, f"files of {folder.name}/ that the wheel would leave out: {sorted(present - picked)}"


def test_cli_version_and_the_shipped_manifest_by_name(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"mstoolkit {mstoolkit.__version__}"
    args = build_parser().parse_args(["bench", "--manifest", "test_split_v1"])
    assert args.manifest == shipped.shipped_path("stylebench", "test_split_v1.json")


def test_the_model_class_is_a_lazy_top_level_name():
    """`from mstoolkit import MusicStyleTransformer` (as the README's users write it) works, and a plain
    `import mstoolkit` still does not load torch."""
    code = ("import sys, mstoolkit; light = 'torch' not in sys.modules\n"
            "from mstoolkit import MusicStyleTransformer\n"
            "print(light, MusicStyleTransformer.__module__, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["True", "mstoolkit.model", "True"]


def _source_copy(target: Path) -> Path:
    """The working tree without environments, caches and build outputs (a stale build/ folder in the
    repository could otherwise leak old files into the wheel)."""
    skip = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                  ".hypothesis", "runs", "out", "test-artifacts", ".cache", ".ipynb_checkpoints")
    shutil.copytree(ROOT, target, ignore=skip)
    return target


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_wheel_carries_the_shipped_files_and_builds_without_warnings(tmp_path):
    pytest.importorskip("setuptools", reason="building the wheel offline uses this environment's setuptools")
    source = _source_copy(tmp_path / "src")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                             "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=280)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    warned = [line for line in log.splitlines() if "Warning" in line or "deprecat" in line.lower()]
    assert not warned, "packaging warnings:\n" + "\n".join(warned)
    (wheel,) = (tmp_path / "dist").glob("mstoolkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped_files = {f"mstoolkit/data_samples/{p.relative_to(ROOT / 'data_samples').as_posix()}"
                     for p in (ROOT / "data_samples").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert shipped_files <= names, sorted(shipped_files - names)
    for needed in ("mstoolkit/data_samples/checkpoints/demo/model.safetensors",
                   "mstoolkit/data_samples/stylebench/test_split_v1.json", "mstoolkit/apps/studio.ipynb",
                   "mstoolkit/apps/jupyter/voila/templates/mstoolkit-studio/index.html.j2",
                   "mstoolkit/widgets/transfer_studio.py", "mstoolkit/shipped.py", "mstoolkit/py.typed"):
        assert needed in names
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "benchmarks/", "data_samples/"))]
    metadata = zipfile.ZipFile(wheel).read(f"mstoolkit-{mstoolkit.__version__}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata and 'extra == "studio"' in metadata
    core = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not [line for line in core if any(tool in line for tool in ("voila", "jupyterlab", "pytest", "playwright"))]
