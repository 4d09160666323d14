"""What a student sees: every notebook run in a real JupyterLab in headless Chromium, one in Jupyter
Notebook 7 (the other front end students meet), and the classroom app (``mstoolkit studio``) used
with clicks.

Per notebook (found by globbing notebooks/*.ipynb): Run > Run All Cells, then assert that every
code cell ran, no cell shows an error, every plotly figure holding data draws it as SVG, plotly.js
reported no warnings, widgets render (a drawn view, not a text repr or "Loading widget..."), audio
players have a source the browser decodes (duration > 0), changing a widget control changes its
figure, and the page fetched nothing from outside the machine. A screenshot and a JSON report per
notebook go to test-artifacts/browser/.

Needs Debian's Chromium (/usr/bin/chromium; `apt-get install chromium`, which .ci/run does) and the
playwright package (the test extra). Without them every test here is skipped with the reason.
Kernels run with CI=1, so the notebooks take their short path (``smoke_test``).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from browser_helpers import (ARTIFACTS, CHROMIUM_ARGS, ERRORS_JS, FIGURES_JS, ROOT, WIDGETS_JS, ConsoleLog,
                             OfflineGuard, Server, audio_problems, audios, figure_signature, figures, figures_problems,
                             find_chromium, free_port, narrow_widget_figures, screenshot, start_jupyterlab,
                             start_notebook7, wait_for_change, write_report)

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package is not installed (pip install -e '.[test]')")
CHROMIUM = find_chromium()
if CHROMIUM is None:
    pytest.skip("no Chromium found at /usr/bin/chromium (install it: apt-get install chromium; .ci/run does) "
                "or at $MSTOOLKIT_CHROMIUM", allow_module_level=True)

pytestmark = pytest.mark.slow
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
AUDIO_WIDGETS = ("TokenizerExplorer", "StyleGallery", "TransferStudio")  # widgets with audio players


@dataclass(frozen=True)
class Interaction:
    """Change the dropdown labelled ``select`` (then press the button ``click``, if any); the figures
    of that cell must change."""

    select: str
    click: str | None = None


# The control a student would try first in each notebook's widget. A notebook not listed here gets
# its widget's first dropdown; one listed as None has no such control (the reason says why).
INTERACTIONS: dict[str, Interaction | None] = {
    "01_tokenize": Interaction("Sample"),
    "02_styles_and_sound": Interaction("Sample"),
    "03_train": None,  # the dashboard's curves change as training runs: checked by their drawn data
    "04_attention": Interaction("Head"),
    "05_style_gram": Interaction("Layer"),
    "06_transfer_and_listen": Interaction("Style", click="Generate"),
    "07_live_switch": None,  # LiveSwitch is played by tests/test_browser_live.py (play, switches, no gaps)
}
CANVAS_WIDGETS = ("LiveSwitch",)  # widgets that draw on a canvas, not in a plotly figure


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free loopback port, serving copies of the notebooks (JupyterLab may write a
    notebook back; the repository's must stay without outputs) beside a link to data_samples/."""
    work = tmp_path_factory.mktemp("jupyterlab")
    root = work / "root"
    (root / "notebooks").mkdir(parents=True)
    for path in NOTEBOOKS:
        shutil.copy(path, root / "notebooks" / path.name)
    (root / "data_samples").symlink_to(ROOT / "data_samples")
    token = secrets.token_hex(16)
    env = dict(os.environ, CI="1")
    server, base = start_jupyterlab(root, work, token, env)
    yield {"base": base, "token": token, "server": server}
    server.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    yield page
    context.close()


def _shutdown_kernels(lab) -> None:
    """Free the memory of the notebook's kernel before the next notebook starts one."""
    url = f"{lab['base']}/api/kernels?token={lab['token']}"
    with urllib.request.urlopen(url, timeout=10) as response:
        kernels = json.load(response)
    for kernel in kernels:
        request = urllib.request.Request(f"{lab['base']}/api/kernels/{kernel['id']}?token={lab['token']}",
                                         method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


# ----------------------------------------------------------------------------- JupyterLab actions
def _open_notebook(page, lab, name: str) -> None:
    # a workspace of its own: JupyterLab would otherwise reopen the notebooks of earlier tests
    workspace = re.sub(r"\W", "-", Path(name).stem)
    page.goto(f"{lab['base']}/lab/workspaces/{workspace}/tree/notebooks/{name}?token={lab['token']}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    # The kernel is ready when the status bar says "Python 3 (ipykernel) | Idle" (the toolbar's
    # execution indicator already says idle while the kernel is still starting; cells run then are lost).
    page.wait_for_function("() => /\\|\\s*Idle/.test((document.querySelector('#jp-main-statusbar') || {}).textContent || '')",
                           timeout=180_000, polling=250)
    page.keyboard.press("Control+b")  # hide the file browser: the notebook gets the whole width


def _run_all_cells(page, timeout_s: float) -> None:
    """Run > Run All Cells, as a person would, then wait until no cell is queued or running."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    prompts = "Array.prototype.map.call(document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt'), (e) => e.textContent)"
    page.wait_for_function(f"() => {prompts}.some((t) => /\\[(\\*|\\d+)\\]/.test(t))", timeout=60_000)
    page.wait_for_function(
        f"() => !{prompts}.some((t) => t.includes('[*]')) && "
        "document.querySelector(\".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']\") !== null",
        timeout=int(timeout_s * 1000), polling=500)


def _settle(page, timeout_s: float = 90) -> None:
    """Widgets and figures render after the kernel is idle: wait until no widget says "Loading
    widget..." and every figure holding data draws it (or the time is up: the asserts report)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate(WIDGETS_JS)["loading"] == 0 and not figures_problems(figures(page)):
            break
        page.wait_for_timeout(500)
    page.wait_for_timeout(500)


def _code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _interact(page, interaction: Interaction, report: dict) -> list[str]:
    """Change the labelled dropdown (and press the button); the figures of that cell must change."""
    select = page.locator(f".jp-NotebookPanel .widget-dropdown:has(> label:text-is('{interaction.select}')) select")
    if select.count() == 0:
        return [f"no dropdown labelled {interaction.select!r} in the notebook's widgets"]
    select = select.last  # the notebook's interactive widget comes last
    select.evaluate("(s) => s.closest('.jp-Cell').setAttribute('data-browser-test', 'interaction')")
    scope = ".jp-Cell[data-browser-test='interaction']"
    options = select.evaluate("(s) => Array.prototype.map.call(s.options, (o) => o.textContent)")
    current = select.evaluate("(s) => s.selectedIndex >= 0 ? s.options[s.selectedIndex].textContent : null")
    choices = [o for o in options if o != current]
    if not choices:
        return [f"the {interaction.select!r} dropdown offers nothing to change to ({options})"]
    choice = choices[0]
    before = figure_signature(page, scope)
    t0 = time.perf_counter()
    select.select_option(label=choice)
    if interaction.click:
        page.locator(scope).get_by_role("button", name=interaction.click).click()
    changed = wait_for_change(page, scope, before)
    report["interaction"] = {"control": interaction.select, "from": current, "to": choice, "click": interaction.click,
                             "figure_changed": changed, "seconds": round(time.perf_counter() - t0, 1)}
    if not changed:
        return [f"changing {interaction.select!r} from {current!r} to {choice!r}"
                + (f" and pressing {interaction.click!r}" if interaction.click else "")
                + " did not change the cell's figures within 120 s"]
    _settle(page, 60)
    after = figures(page, scope)
    report["interaction"]["titles_after"] = [f["title"] for f in after if f["shown"]]
    if not any(f["shown"] and f["points"] and f["drawn"] for f in after):
        return [f"after changing {interaction.select!r} to {choice!r} the cell shows no figure with data "
                f"(figures: {after})"]
    return figures_problems(after)


def _first_dropdown(page) -> Interaction | None:
    labels = page.locator(".jp-NotebookPanel .widget-dropdown > label").all_text_contents()
    return Interaction(labels[0]) if labels else None


# ----------------------------------------------------------------------------- notebooks in JupyterLab
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_jupyterlab(path: Path, lab, page):
    console, offline = ConsoleLog(page), OfflineGuard(page)
    report: dict = {"notebook": path.name}
    t0 = time.perf_counter()
    try:
        _open_notebook(page, lab, path.name)
        report["open_s"] = round(time.perf_counter() - t0, 1)
        t1 = time.perf_counter()
        _run_all_cells(page, timeout_s=600)
        report["run_s"] = round(time.perf_counter() - t1, 1)
        _settle(page)
        problems = _check_notebook_page(page, path, report)
        screenshot(page, ARTIFACTS / f"{path.stem}.png")

        interaction = INTERACTIONS.get(path.stem, _first_dropdown(page))
        if interaction is not None:
            failed = _interact(page, interaction, report)
            if failed:
                screenshot(page, ARTIFACTS / f"{path.stem}.interaction.png")
            problems += failed
            problems += [f"after the interaction: {e}" for e in page.evaluate(ERRORS_JS)]
        else:
            report["interaction"] = None
        problems += [f"plotly.js warning: {w}" for w in sorted(set(console.plotly_warnings))[:5]]
        problems += [f"browser console error: {e}" for e in console.errors[:5]]
        problems += [f"request outside this machine: {u}" for u in offline.external[:5]]
    except BaseException:
        screenshot(page, ARTIFACTS / f"{path.stem}.failure.png")
        raise
    finally:
        report["total_s"] = round(time.perf_counter() - t0, 1)
        report.update(console_errors=console.errors, plotly_warnings=sorted(set(console.plotly_warnings)),
                      anywidget_slow_init=console.slow_init, external_requests=offline.external)
        write_report(ARTIFACTS / f"{path.stem}.json", report)
        _shutdown_kernels(lab)
    assert not problems, f"{path.name} in JupyterLab:\n  " + "\n  ".join(problems)


def _check_notebook_page(page, path: Path, report: dict) -> list[str]:
    """Everything a person checks by eye once the notebook has run."""
    problems = []
    prompts = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt").all_text_contents()
    not_run = [i for i, text in enumerate(prompts) if not re.search(r"\[\d+\]", text)]
    if not_run:
        problems.append(f"code cells {not_run} did not run (prompts {prompts})")
    problems += [f"error output: {text}" for text in page.evaluate(ERRORS_JS)]

    found = figures(page)
    report["figures"] = found
    report["narrow_widget_figures"] = narrow_widget_figures(found)
    if not found:
        problems.append("no plotly figure rendered")
    problems += figures_problems(found)

    code = _code(path)
    widgets = page.evaluate(WIDGETS_JS)
    report["widgets"] = widgets
    if "mstoolkit.widgets" in code:
        if not any(w > 0 and h > 0 for w, h in widgets["views"]):
            problems.append("the notebook shows a widget but no widget view was drawn (blank output)")
        if not any(f["widget"] and f["points"] and f["drawn"] for f in found) \
                and not any(name in code for name in CANVAS_WIDGETS):
            problems.append("no figure inside a widget draws any data")
    if widgets["reprs"]:
        problems.append(f"widgets shown as text instead of views (widget JavaScript not loaded): {widgets['reprs']}")
    if widgets["loading"]:
        problems.append(f"{widgets['loading']} widget(s) still 'Loading widget...'")

    players = audios(page)
    report["audio"] = players
    if ("audio.play(" in code or any(name in code for name in AUDIO_WIDGETS)) and not players:
        problems.append("the notebook plays audio but no <audio> element was rendered")
    problems += audio_problems(players)
    return problems


# ----------------------------------------------------------------------------- Jupyter Notebook 7
NOTEBOOK7 = ROOT / "notebooks" / "01_tokenize.ipynb"  # figures, a FigureWidget in a widget, audio


@pytest.fixture
def notebook7(tmp_path):
    """Jupyter Notebook 7 (``jupyter notebook``) on a free loopback port, serving a copy of one
    notebook in a folder of its own: the samples come from the installed package, not a checkout."""
    notebook = pytest.importorskip("notebook", reason="Jupyter Notebook 7 is not installed (the test extra)")
    assert int(notebook.__version__.split(".")[0]) >= 7, notebook.__version__
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK7, root / NOTEBOOK7.name)
    token = secrets.token_hex(16)
    server, base = start_notebook7(root, tmp_path, token, dict(os.environ, CI="1"))
    yield {"base": base, "token": token, "server": server}
    server.stop()


def _connected_kernels(server: dict, path: str) -> list[dict]:
    """The kernels of ``path``'s sessions that a page has connected to."""
    with urllib.request.urlopen(f"{server['base']}/api/sessions?token={server['token']}", timeout=10) as response:
        sessions = json.load(response)
    return [s["kernel"] for s in sessions if s["path"] == path and s.get("kernel", {}).get("connections", 0) > 0]


def _wait_for_kernel(page, server: dict, path: str, report: dict, timeout_s: float = 180) -> None:
    """Wait until the page is connected to a running, idle kernel. Notebook 7 sometimes asks which
    kernel to start ("Select Kernel", Python 3 preselected) although the notebook names it; a student
    presses Select, and so does this test (counted in the report)."""
    report["select_kernel_dialogs"] = 0
    idle = ("() => /Kernel status: Idle/.test((document.querySelector('.jp-NotebookPanel "
            ".jp-Notebook-ExecutionIndicator') || {}).textContent || '')")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog:has-text('Select Kernel') .jp-mod-accept")
        if dialog.count():
            dialog.first.click()
            report["select_kernel_dialogs"] += 1
        elif _connected_kernels(server, path) and page.evaluate(idle):
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"{path}: no kernel connected within {timeout_s:.0f} s:\n{server['server'].output()}")


# Notebook 7.6's own start-up error on every notebook page (its bundled core reads the schema of a
# settings plugin it has not loaded; not on /tree, not in JupyterLab, and also with no user settings).
# Counted apart, reported; whatever it might break is caught by the checks of the page.
NOTEBOOK7_STARTUP_ERROR = "uncaught: Cannot read properties of undefined (reading 'schema')"


@pytest.mark.timeout(600)
def test_notebook_in_notebook7(notebook7, page):
    """01_tokenize in Jupyter Notebook 7: Run > Run All Cells, then the same checks as in JupyterLab
    (every cell ran, no error output, figures drawn with data, the widget drawn, audio that plays, a
    widget control that changes its figure, nothing fetched from outside the machine)."""
    console, offline = ConsoleLog(page), OfflineGuard(page)
    report: dict = {"notebook": NOTEBOOK7.name, "front_end": "Jupyter Notebook 7"}
    name = f"notebook7_{NOTEBOOK7.stem}"
    t0 = time.perf_counter()
    try:
        page.goto(f"{notebook7['base']}/notebooks/{NOTEBOOK7.name}?token={notebook7['token']}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        _wait_for_kernel(page, notebook7, NOTEBOOK7.name, report)
        report["open_s"] = round(time.perf_counter() - t0, 1)
        t1 = time.perf_counter()
        _run_all_cells(page, timeout_s=400)
        report["run_s"] = round(time.perf_counter() - t1, 1)
        _settle(page)
        problems = _check_notebook_page(page, NOTEBOOK7, report)
        screenshot(page, ARTIFACTS / f"{name}.png")
        failed = _interact(page, INTERACTIONS[NOTEBOOK7.stem], report)
        if failed:
            screenshot(page, ARTIFACTS / f"{name}.interaction.png")
        problems += failed
        problems += [f"after the interaction: {e}" for e in page.evaluate(ERRORS_JS)]
        problems += [f"plotly.js warning: {w}" for w in sorted(set(console.plotly_warnings))[:5]]
        problems += [f"browser console error: {e}" for e in console.errors if e != NOTEBOOK7_STARTUP_ERROR][:5]
        problems += [f"request outside this machine: {u}" for u in offline.external[:5]]
    except BaseException:
        screenshot(page, ARTIFACTS / f"{name}.failure.png")
        raise
    finally:
        report["total_s"] = round(time.perf_counter() - t0, 1)
        report.update(console_errors=console.errors, plotly_warnings=sorted(set(console.plotly_warnings)),
                      anywidget_slow_init=console.slow_init, external_requests=offline.external)
        write_report(ARTIFACTS / f"{name}.json", report)
    assert not problems, f"{NOTEBOOK7.name} in Jupyter Notebook 7:\n  " + "\n  ".join(problems)


# ----------------------------------------------------------------------------- the studio app
def _wait_port(server: Server, port: int, timeout: float = 120) -> str:
    """Wait until the studio prints its URL and listens; returns the printed URL."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"mstoolkit studio exited with status {server.proc.returncode}:\n{server.output()}")
        printed = re.search(r"open (http://\S+) in a browser", server.output(20_000))
        if printed:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return printed.group(1)
        time.sleep(0.3)
    raise AssertionError(f"mstoolkit studio did not listen on port {port} within {timeout:.0f} s:\n{server.output()}")


@pytest.fixture
def studio(tmp_path):
    port = free_port()
    script = Path(sys.executable).parent / "mstoolkit"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "mstoolkit.cli"]
    server = Server(command + ["studio", "--no-browser", "--port", str(port)], tmp_path / "studio.log",
                    env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=tmp_path)
    try:
        yield server, port
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(server.log, ARTIFACTS / "studio.log")


def _wait_live(page, root, server, condition: str, what: str, timeout_ms: int = 60_000) -> None:
    """Wait until ``condition`` (JS, on the LiveSwitch root ``e``) holds; if it does not, fail saying
    what the player showed (its data attributes, status line, audio state) and what the studio printed."""
    try:
        page.wait_for_function(f"(e) => {condition}", arg=root.element_handle(), timeout=timeout_ms, polling=100)
    except sync_api.TimeoutError:
        shown = root.evaluate("(e) => ({data: {...e.dataset}, text: e.innerText.slice(0, 2000)})")
        raise AssertionError(f"waited {timeout_ms / 1000:.0f} s for {what}; the player showed {shown}\n"
                             f"studio output:\n{server.output(6000)}") from None


@pytest.mark.timeout(240)
def test_studio_live_tab_plays_and_switches_style(studio, page):
    """`mstoolkit studio`, Live tab: Play starts the beats, a style button switches the music, and the
    readout says when the new style was ready (timing goals: tests/test_browser_live.py)."""
    server, port = studio
    console, offline = ConsoleLog(page), OfflineGuard(page)
    try:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(_wait_port(server, port), wait_until="commit")
        page.wait_for_selector(".mst-studio .mst-generate", state="visible", timeout=240_000)
        page.get_by_role("tab", name="Live").click()
        root = page.locator(".mst-live").first
        root.wait_for(timeout=60_000)
        root.locator(".mst-live-play").click()
        _wait_live(page, root, server, "+e.dataset.chunks > 0", "the first beat after Play")
        root.locator(".mst-live-style[data-style='waltz']").click()
        _wait_live(page, root, server, "e.dataset.styleNow === 'waltz'", "waltz playing after its button")
        readout = root.locator(".mst-live-readout").text_content()
        screenshot(page, ARTIFACTS / "studio_live.png")
        root.locator(".mst-live-stop").click()
    except BaseException:
        screenshot(page, ARTIFACTS / "studio_live.failure.png")
        raise
    assert re.match(r"waltz: new style ready \d+ ms after the click", readout), readout
    assert not console.errors and not offline.external, (console.errors, offline.external)


@pytest.mark.timeout(240)
def test_studio_app_transfer_by_clicks(studio, page):
    """`mstoolkit studio`: open the printed URL, pick a style, press Generate; the result's piano roll
    and audio appear, then the style gallery tab plays its first style. Nothing is fetched from
    outside the machine."""
    server, port = studio
    console, offline = ConsoleLog(page), OfflineGuard(page)
    report: dict = {}
    t0 = time.perf_counter()
    problems: list[str] = []
    try:
        url = _wait_port(server, port)
        assert url == f"http://127.0.0.1:{port}/"
        report["server_s"] = round(time.perf_counter() - t0, 1)
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(url, wait_until="commit")
        page.wait_for_selector(".mst-studio .mst-generate", state="visible", timeout=240_000)
        report["page_s"] = round(time.perf_counter() - t0, 1)
        assert "There was an error when executing cell" not in page.inner_text("body"), server.output()

        page.locator(".mst-studio .widget-dropdown:has(> label:text-is('Style')) select").select_option(label="waltz")
        t1 = time.perf_counter()
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function("() => document.querySelectorAll('.mst-studio audio').length >= 2", timeout=240_000)
        try:  # the scores (and the status line saying what was generated) come after the audio
            page.wait_for_function("() => document.querySelector('.mst-studio').innerText.includes('generated')",
                                   timeout=120_000)
        except sync_api.TimeoutError:
            pass  # reported below, with the status text
        try:  # the result's FigureWidget gets its data in a message of its own, later under load
            page.wait_for_function(f"() => ({FIGURES_JS})('.mst-studio').some((f) => f.title.startsWith('result')"
                                   " && f.points > 0 && f.drawn > 0)", timeout=120_000, polling=250)
        except sync_api.TimeoutError:
            pass  # reported below, with every figure
        _settle(page, 60)
        report["generate_s"] = round(time.perf_counter() - t1, 1)
        report["status"] = page.locator(".mst-studio").inner_text()[:8000]

        rolls = figures(page, ".mst-studio")
        report["figures"] = rolls
        result = [f for f in rolls if f["title"].startswith("result") and "waltz" in f["title"]]
        if not result or not (result[0]["points"] and result[0]["drawn"]):
            problems.append(f"no drawn piano roll of the waltz result: {rolls}")
        problems += figures_problems(rolls)
        players = audios(page, ".mst-studio")
        report["audio"] = players
        if len(players) < 2:
            problems.append(f"expected the content and result audio players, found {len(players)}")
        problems += audio_problems(players)
        if "generated" not in report["status"]:
            problems.append("the studio does not report a generation: " + report["status"][-400:])
        screenshot(page, ARTIFACTS / "studio_transfer.png")

        page.get_by_role("tab", name="Style gallery").click()
        page.wait_for_function("() => Array.prototype.some.call(document.querySelectorAll('.widget-tab-contents audio'),"
                               " (a) => a.offsetParent !== null && a.offsetHeight > 0)", timeout=120_000)
        _settle(page, 60)
        gallery = [f for f in figures(page) if f["width"] > 0 and not f["title"].startswith(("content", "result"))]
        report["gallery_figures"] = gallery
        report["narrow_widget_figures"] = narrow_widget_figures(rolls + gallery)
        if not any(f["points"] and f["drawn"] for f in gallery):
            problems.append(f"the style gallery draws no figure: {gallery}")
        problems += figures_problems(gallery)
        screenshot(page, ARTIFACTS / "studio_gallery.png")
        problems += [f"browser console error: {e}" for e in console.errors[:5]]
        problems += [f"plotly.js warning: {w}" for w in sorted(set(console.plotly_warnings))[:5]]
        problems += [f"request outside this machine (the app must work offline): {u}" for u in offline.external[:5]]
    except BaseException:
        screenshot(page, ARTIFACTS / "studio.failure.png")
        raise
    finally:
        report["total_s"] = round(time.perf_counter() - t0, 1)
        report.update(console_errors=console.errors, anywidget_slow_init=console.slow_init,
                      external_requests=offline.external)
        write_report(ARTIFACTS / "studio.json", report)
    assert not problems, "mstoolkit studio:\n  " + "\n  ".join(problems)
