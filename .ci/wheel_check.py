"""The checks of .ci/wheel_check.sh that are easier said in Python (standard library only).

    python wheel_check.py contents WHEEL              the shipped files are in the wheel; its file list and size
    python wheel_check.py shipped VENV                the shipped files resolve inside VENV's installed package
    python wheel_check.py copy-notebook SRC DST       a copy of SRC with a last cell that prints mstoolkit's origin
    python wheel_check.py executed NOTEBOOK VENV      every cell ran, no error, widgets shown, mstoolkit from VENV
"""
from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

NEEDED = ["mstoolkit/data_samples/bwv66.6.mid", "mstoolkit/data_samples/checkpoints/demo/model.safetensors",
          "mstoolkit/data_samples/checkpoints/demo/tokenizer.json",
          "mstoolkit/data_samples/stylebench/test_split_v1.json", "mstoolkit/apps/studio.ipynb",
          "mstoolkit/apps/jupyter/voila/templates/mstoolkit-studio/index.html.j2",
          "mstoolkit/widgets/transfer_studio.py", "mstoolkit/shipped.py"]
MARK = "MSTOOLKIT_FROM"


def contents(wheel: str) -> None:
    infos = zipfile.ZipFile(wheel).infolist()
    names = [i.filename for i in infos]
    print(f"{Path(wheel).name}: {len(names)} files, {Path(wheel).stat().st_size / 1e6:.2f} MB "
          f"({sum(i.file_size for i in infos) / 1e6:.2f} MB unpacked)")
    for info in infos:
        print(f"  {info.file_size:>9}  {info.filename}")
    missing = [n for n in NEEDED if n not in names]
    if missing:
        sys.exit(f"missing from the wheel: {missing}")


def shipped(venv: str) -> None:
    from mstoolkit import sample_paths
    from mstoolkit.checkpoint import resolve
    from mstoolkit.shipped import shipped_path

    root = Path(venv).resolve()
    found = {"demo checkpoint": resolve("demo"), "sample bwv66.6": sample_paths()["bwv66.6"],
             "StyleBench test split": shipped_path("stylebench", "test_split_v1.json")}
    for name, path in found.items():
        print(f"{name}: {path}")
        if root not in path.resolve().parents:
            sys.exit(f"{name} was found outside the installed package: {path}")


def copy_notebook(source: str, target: str) -> None:
    nb = json.loads(Path(source).read_text())
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": f"import sys, mstoolkit\nprint({MARK!r}, mstoolkit.__file__, sys.executable)"}
    if (nb["nbformat"], nb["nbformat_minor"]) >= (4, 5):
        cell["id"] = "mstoolkit-origin"  # cell ids are required from nbformat 4.5
    nb["cells"].append(cell)
    Path(target).write_text(json.dumps(nb))


def executed(notebook: str, venv: str) -> None:
    cells = [c for c in json.loads(Path(notebook).read_text())["cells"] if c["cell_type"] == "code"]
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    ran = sum(c.get("execution_count") is not None for c in cells)
    kinds = sorted({kind for c in cells for o in c.get("outputs", []) for kind in o.get("data", {})})
    print(f"{ran} of {len(cells)} code cells ran, {len(errors)} error outputs; output types: {', '.join(kinds)}")
    if errors or ran != len(cells):
        sys.exit(f"the notebook failed: {[e.get('evalue') for e in errors]}")
    if "application/vnd.jupyter.widget-view+json" not in kinds:
        sys.exit("the notebook showed no widget")
    text = [o.get("text", "") for o in cells[-1]["outputs"]]  # a stream's text: a string or a list of lines
    words = "".join(t if isinstance(t, str) else "".join(t) for t in text).split()
    if len(words) < 3 or words[0] != MARK or Path(venv).resolve() not in Path(words[1]).resolve().parents:
        sys.exit(f"the kernel did not import the installed mstoolkit: {words}")
    print(f"the kernel ({words[2]}) imported {words[1]}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"contents": contents, "shipped": shipped, "copy-notebook": copy_notebook, "executed": executed}[command](*args)
