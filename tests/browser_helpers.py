"""What the browser tests need: Chromium, servers on free loopback ports, and checks of the page.

Everything here asks the page what a person would see: figures drawn as SVG with data, widgets
drawn (not blank), audio players with a decodable source, no error boxes, and no request leaving
the machine.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"  # screenshots and per-page reports (git-ignored)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def find_chromium() -> str | None:
    """Debian's Chromium (``apt-get install chromium``), or ``$MSTOOLKIT_CHROMIUM``; None if absent.
    Playwright's own browser download does not work offline, so the system browser is used."""
    for candidate in (os.environ.get("MSTOOLKIT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process in its own process group, its output in ``log``; ``stop()`` ends the group
    (the server and the kernels it started)."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.log = log
        self._log_file = open(log, "w")
        self.proc = subprocess.Popen(list(argv), stdout=self._log_file, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True)

    def output(self, tail: int = 4000) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")[-tail:]

    def wait_http(self, url: str, timeout: float = 120) -> None:
        """Wait until ``url`` answers 200; AssertionError with the server's log if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with status {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"{url} did not answer within {timeout:.0f} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._log_file.close()


def lab_settings(folder: Path) -> Path:
    """User settings for a test JupyterLab: every cell in the DOM (no virtual scrolling, so the whole
    notebook can be checked and photographed), no autosave, no news or update checks."""
    settings = {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, values in settings.items():
        path = folder / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return folder


def start_jupyterlab(root: Path, work: Path, token: str, env: dict[str, str]) -> tuple[Server, str]:
    """JupyterLab serving ``root`` on a free loopback port, with its config, runtime, settings and
    workspaces in ``work`` (nothing of the user's own Jupyter set-up is read). Returns (server, base URL)."""
    return _start_jupyter("jupyterlab", "LabApp", root, work, token, env, ["--LabApp.extension_manager=readonly"])


def start_notebook7(root: Path, work: Path, token: str, env: dict[str, str]) -> tuple[Server, str]:
    """Jupyter Notebook 7 (the ``notebook`` package: one document per tab, built from JupyterLab's
    components) serving ``root``, set up as :func:`start_jupyterlab`. Returns (server, base URL)."""
    return _start_jupyter("notebook", "JupyterNotebookApp", root, work, token, env)


def _start_jupyter(module: str, app: str, root: Path, work: Path, token: str, env: dict[str, str],
                   extra: Sequence[str] = ()) -> tuple[Server, str]:
    port = free_port()
    env = dict(env, JUPYTER_CONFIG_DIR=str(work / "config"), JUPYTER_RUNTIME_DIR=str(work / "runtime"),
               JUPYTER_DATA_DIR=str(work / "data"))
    argv = [sys.executable, "-m", module, "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", f"--{app}.user_settings_dir={lab_settings(work / 'settings')}",
            f"--{app}.workspaces_dir={work / 'workspaces'}", *extra]
    server = Server(argv, work / f"{module}.log", env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    server.wait_http(f"{base}/api/status?token={token}")
    return server, base


class OfflineGuard:
    """Route every request of a page: loopback and data: URLs go through, anything else is refused
    and recorded in ``external`` (a classroom may have no internet; nothing may depend on it)."""

    def __init__(self, page):
        self.external: list[str] = []
        page.route("**/*", self._route)

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in LOOPBACK:
            route.continue_()
        else:
            self.external.append(url)
            route.abort()


# anywidget gives a model 2 s to load its JavaScript, then reports this (uncaught) even though the
# model goes on loading: plotly's FigureWidget ships all of plotly.js, which a busy 2-core machine
# may take longer to start. Counted apart; a figure that really failed is caught by its drawn data.
SLOW_INIT = "[anywidget] Failed to initialize model."


class ConsoleLog:
    """The page's console errors, uncaught exceptions and plotly.js warnings ("WARN: ...")."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.slow_init = 0  # SLOW_INIT reports
        self.plotly_warnings: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", self._on_error)

    def _on_error(self, err) -> None:
        if SLOW_INIT in str(err):
            self.slow_init += 1
        else:
            self.errors.append(f"uncaught: {err}")

    def _on_console(self, message) -> None:
        text = message.text
        if text.startswith("WARN:"):  # plotly.js Lib.warn: a figure it could not draw as asked
            self.plotly_warnings.append(text)
        elif message.type == "error" and "favicon" not in text:
            self.errors.append(text)


# ----------------------------------------------------------------------------- page checks (JavaScript)
FIGURES_JS = """(scope) => {
  const root = scope ? document.querySelector(scope) : document;
  const out = [];
  for (const gd of (root ? root.querySelectorAll('.js-plotly-plot') : [])) {
    // _fullData: the traces as plotly.js decoded them (numpy arrays arrive base64-encoded in gd.data)
    const traces = Array.isArray(gd._fullData) ? gd._fullData : (Array.isArray(gd.data) ? gd.data : []);
    const points = (t) => {
      const n = (a) => (a && a.length ? Array.prototype.filter.call(a, (v) => v !== null && v !== undefined).length : 0);
      return n(t.x) + n(t.y) + n(t.z);
    };
    const drawn = Array.prototype.filter.call(
      gd.querySelectorAll('.main-svg path.js-line, .main-svg path.point, .main-svg .barlayer path, .main-svg image, .main-svg .hm image'),
      (e) => (e.getAttribute('d') || e.getAttribute('href') || e.getAttribute('xlink:href') || '').length > 8).length;
    const box = gd.getBoundingClientRect();
    const svg = gd.querySelector('.main-svg');
    const svgWidth = svg ? Math.round(svg.getBoundingClientRect().width) : 0;
    const fixedWidth = !!(gd.layout && gd.layout.width);  // a figure that asked for its width
    const shown = gd.offsetParent !== null;  // false inside a hidden tab (display: none)
    const title = gd.layout && gd.layout.title ? String(gd.layout.title.text || '') : '';
    out.push({title: title, types: traces.map((t) => String(t.type || 'scatter')),
              points: traces.reduce((s, t) => s + points(t), 0), drawn: drawn,
              width: Math.round(box.width), height: Math.round(box.height), svgWidth: svgWidth,
              fixedWidth: fixedWidth,
              shown: shown, widget: !gd.closest('.jp-RenderedPlotly')});
  }
  return out;
}"""

AUDIO_JS = """(scope) => {
  const root = scope ? document.querySelector(scope) : document;
  return Array.prototype.map.call(root ? root.querySelectorAll('audio') : [], (a) => {
    const source = a.currentSrc || a.src || (a.querySelector('source') ? a.querySelector('source').src : '');
    return {source: String(source).slice(0, 40), sourceLength: String(source).length, readyState: a.readyState,
            duration: Number.isFinite(a.duration) ? a.duration : null,
            error: a.error ? String(a.error.message || a.error.code) : null};
  });
}"""

AUDIO_READY_JS = """(scope) => {
  const root = scope ? document.querySelector(scope) : document;
  const players = root ? root.querySelectorAll('audio') : [];
  return Array.prototype.every.call(players, (a) => a.readyState >= 1 || a.error);
}"""

# Outputs a person would read as failures: tracebacks, error lines, widget state that could not be
# sent to the browser (jupyter_client's "Message serialization failed", e.g. NaN in a figure).
ERRORS_JS = """() => {
  const bad = /Traceback \\(most recent call last\\)|^\\w*(Error|Exception)\\b.*:|Message serialization failed|Error displaying widget/m;
  const found = [];
  for (const e of document.querySelectorAll('.jp-OutputArea-output')) {
    const mime = e.getAttribute('data-mime-type') || '';
    const text = e.textContent || '';
    if ((mime === 'application/vnd.jupyter.stderr' && bad.test(text)) || /Error displaying widget/.test(text)) {
      found.push(text.slice(0, 600));
    }
  }
  for (const e of document.querySelectorAll('.jupyter-widgets-error-widget, .jp-ErrorWidget')) {
    found.push('widget error view: ' + (e.textContent || '').slice(0, 300));
  }
  return found;
}"""

# Widget outputs: a drawn view (width and height > 0), or the failure modes (a text repr such as
# "VBox(children=...)" when the widget manager is missing, "Loading widget..." forever).
WIDGETS_JS = """() => {
  const views = Array.prototype.filter.call(document.querySelectorAll('.jp-OutputArea-output'),
    (e) => e.querySelector(':scope > .jupyter-widgets, :scope > .widget-container, :scope .jupyter-widgets, '
                           + ':scope .mst-live'));  // .mst-live: the LiveSwitch anywidget, no ipywidgets class
  const sizes = views.map((e) => { const b = e.getBoundingClientRect(); return [Math.round(b.width), Math.round(b.height)]; });
  const reprs = Array.prototype.filter.call(document.querySelectorAll('.jp-OutputArea-output[data-mime-type="text/plain"]'),
    (e) => /^(VBox|HBox|Tab|Box|FigureWidget|Output|Dropdown)\\(/.test((e.textContent || '').trim())).map((e) => e.textContent.slice(0, 120));
  const loading = Array.prototype.filter.call(document.querySelectorAll('.jp-OutputArea-output'),
    (e) => /^\\s*Loading widget\\.\\.\\./.test(e.textContent || '')).length;
  return {views: sizes, reprs: reprs, loading: loading};
}"""

SIGNATURE_JS = """(scope) => {
  // A cheap hash of what the figures in `scope` draw (their SVG, heatmap images included).
  const root = scope ? document.querySelector(scope) : document;
  let h = 5381, n = 0;
  for (const gd of (root ? root.querySelectorAll('.js-plotly-plot .svg-container') : [])) {
    const s = gd.innerHTML; n += s.length;
    for (let i = 0; i < s.length; i += 1) { h = ((h * 33) ^ s.charCodeAt(i)) >>> 0; }
  }
  return n + ':' + h;
}"""


def figures(page, scope: str | None = None) -> list[dict[str, Any]]:
    return page.evaluate(FIGURES_JS, scope)


def audios(page, scope: str | None = None) -> list[dict[str, Any]]:
    """Every <audio> in ``scope`` once the browser read its header (``duration`` > 0 means it decoded)."""
    try:
        page.wait_for_function(AUDIO_READY_JS, arg=scope, timeout=30_000)
    except Exception:  # noqa: BLE001 - the report below says which player is not ready
        pass
    return page.evaluate(AUDIO_JS, scope)


def figure_signature(page, scope: str | None = None) -> str:
    return page.evaluate(SIGNATURE_JS, scope)


def wait_for_change(page, scope: str | None, before: str, timeout_ms: int = 120_000) -> bool:
    """Wait until the figures in ``scope`` draw something else than ``before`` and at least one of
    them shows data (a figure being replaced is briefly absent); False on time-out."""
    arg = json.dumps(scope)
    try:
        page.wait_for_function(f"(before) => ({SIGNATURE_JS})({arg}) !== before && "
                               f"({FIGURES_JS})({arg}).some((f) => f.shown && f.points > 0 && f.drawn > 0)",
                               arg=before, timeout=timeout_ms, polling=250)
        return True
    except Exception:  # noqa: BLE001 - Playwright's TimeoutError; the caller asserts
        return False


def figures_problems(found: list[dict[str, Any]]) -> list[str]:
    """Shown figures that hold data but draw nothing, or that have no size (a collapsed plot).
    Figures in a hidden tab are not drawn until the tab opens, so they are not judged."""
    problems = []
    for i, fig in enumerate(found):
        if not fig["shown"]:
            continue
        label = f"figure {i} ({fig['title'] or 'untitled'}, {'/'.join(sorted(set(fig['types'])))})"
        if fig["points"] and not fig["drawn"]:
            problems.append(f"{label}: {fig['points']} data values but nothing drawn in its SVG")
        if fig["points"] and (fig["width"] < 50 or fig["height"] < 50):
            problems.append(f"{label}: drawn at {fig['width']}x{fig['height']} px")
        elif fig["points"] and not fig["widget"] and not fig["fixedWidth"] and fig["svgWidth"] < 0.6 * fig["width"]:
            # A static figure fills its output's width. FigureWidgets are not judged here: under
            # anywidget they keep plotly's default 700 px until their layout changes after display
            # (plotly.py issue #5208); narrow_widget_figures() lists them for the report.
            problems.append(f"{label}: drawn {fig['svgWidth']} px wide in a {fig['width']} px box")
    return problems


def narrow_widget_figures(found: list[dict[str, Any]]) -> list[str]:
    """FigureWidgets drawn narrower than their box (see figures_problems), for the report."""
    return [f"{fig['title'] or 'untitled'}: {fig['svgWidth']} of {fig['width']} px" for fig in found
            if fig["shown"] and fig["widget"] and fig["points"] and not fig["fixedWidth"]
            and fig["svgWidth"] < 0.9 * fig["width"]]


def audio_problems(found: list[dict[str, Any]]) -> list[str]:
    problems = []
    for i, player in enumerate(found):
        if not player["sourceLength"]:
            problems.append(f"audio {i}: no source")
        elif player["error"] or not player["duration"]:
            problems.append(f"audio {i}: source {player['source']}... does not play "
                            f"(error {player['error']}, duration {player['duration']})")
    return problems


SCROLLER_JS = """() => {
  // The element that scrolls the page's content (JupyterLab's notebook panel, Voila's cell area):
  // the one with the most hidden content. Returns how much taller the page must be to show it all.
  let best = null, extra = 0;
  for (const e of document.querySelectorAll('*')) {
    const style = getComputedStyle(e);
    if (!/(auto|scroll)/.test(style.overflowY) || e.clientHeight < 100) continue;
    const hidden = e.scrollHeight - e.clientHeight;
    if (hidden > extra) { best = e; extra = hidden; }
  }
  if (best) { best.setAttribute('data-browser-test-scroller', ''); }
  return extra;
}"""


def screenshot(page, path: Path, max_height: int = 16_000) -> None:
    """A picture of the whole content: the viewport grows by what the scrolling element hides, the
    element scrolls back to the top, and the page is photographed."""
    extra = page.evaluate(SCROLLER_JS)
    size = page.viewport_size or {"width": 1280, "height": 900}
    if extra > 0:
        page.set_viewport_size({"width": size["width"], "height": min(max_height, size["height"] + extra + 40)})
        page.evaluate("() => { const e = document.querySelector('[data-browser-test-scroller]'); if (e) e.scrollTop = 0; }")
        page.wait_for_timeout(800)  # plotly re-lays out to the new size before the picture
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")
