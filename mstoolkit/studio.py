"""``mstoolkit studio``: the Transfer Studio and the style gallery as a standalone web app, for a
classroom projector.

    $ mstoolkit studio                      # serves http://127.0.0.1:8866/ and opens it in the browser
    $ mstoolkit studio --no-browser --port 9000 --model runs/tiny

The app is a bundled notebook (``mstoolkit/apps/studio.ipynb``) served by Voila: the page shows the
widgets, never the code, and each visitor gets a fresh kernel. Everything the page loads (Voila's
front end, the ipywidgets manager, plotly's FigureWidget through anywidget) comes from installed
Python packages, so the app works with no internet connection. It listens on the loopback address
only: other machines cannot reach it.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

from mstoolkit.config import UserError
from mstoolkit.shipped import DEFAULT_MODEL

APPS = Path(__file__).resolve().parent / "apps"
APP_NOTEBOOK = APPS / "studio.ipynb"
# A Jupyter data folder holding the Voila template "mstoolkit-studio" (Voila's "lab" template without
# its CDN links); Voila finds templates on the Jupyter path.
TEMPLATE_ROOT = APPS / "jupyter"
TEMPLATE = "mstoolkit-studio"
UNFIT_EXTENSIONS = ["@jupyter-notebook/lab-extension"]  # lab extensions that cannot run inside a Voila page
DEFAULT_PORT = 8866  # Voila's usual port; another free one is taken when it is busy
HOST = "127.0.0.1"
MODEL_ENV = "MSTOOLKIT_STUDIO_MODEL"  # the app notebook reads the model to load from here


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if nothing listens on ``host:port`` (so a server may bind it).

        >>> port_is_free(8866)
        True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int = DEFAULT_PORT, host: str = HOST) -> int:
    """``preferred`` if it is free, else a free port chosen by the operating system.

        >>> 1024 <= free_port() <= 65535
        True
    """
    if port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def voila_argv(port: int, open_browser: bool = True, notebook: Path = APP_NOTEBOOK) -> list[str]:
    """Voila's command-line arguments for serving ``notebook`` on ``127.0.0.1:port``.

        >>> voila_argv(8866, open_browser=False)[-1]
        '--no-browser'
    """
    argv = [str(notebook), f"--port={port}", f"--Voila.ip={HOST}", "--Voila.port_retries=0",
            f"--template={TEMPLATE}", "--theme=light", "--show_tracebacks=False",
            # Voila loads every installed lab extension; Notebook 7's own (installed with `notebook`) needs
            # Notebook's shell and breaks the page ("The getter for the shared module is not a function")
            f"--VoilaConfiguration.extension_denylist={UNFIT_EXTENSIONS!r}"]
    if not open_browser:
        argv.append("--no-browser")
    return argv


def url(port: int) -> str:
    """The address a browser opens: ``http://127.0.0.1:PORT/``."""
    return f"http://{HOST}:{port}/"


def serve(port: int | None = None, open_browser: bool = True, model: str = DEFAULT_MODEL) -> None:
    """Serve the studio until Ctrl-C. ``port=None``: 8866, or a free port if that one is taken.

    ``model``: a shipped name, a checkpoint or run folder, or ``"debug"``. Raises ValueError for a
    port in use or out of range, FileNotFoundError for an unknown model, ImportError (with the pip
    command) when Voila is missing.

        >>> serve(port=9000, open_browser=False)   # blocks; prints the URL first  # doctest: +SKIP
    """
    try:
        from voila.app import Voila
    except ImportError as err:
        raise ImportError(f"mstoolkit studio needs Voila, which is not installed ({err}): "
                          'pip install "mstoolkit[studio]" (in the repository: pip install -e ".[studio]")') from err
    if port is None:
        port = free_port()
    elif not 1 <= port <= 65535:
        raise UserError(f"--port {port}: expected a port number between 1 and 65535")
    elif not port_is_free(port):
        raise UserError(f"--port {port}: the port is in use; choose another one or leave --port out")
    if Path(model).is_dir():
        model = str(Path(model).resolve())  # the app's kernel runs in another folder
    elif model != "debug":
        from mstoolkit.checkpoint import resolve

        resolve(model)  # FileNotFoundError naming the shipped checkpoints, before any server starts
    os.environ[MODEL_ENV] = model  # the kernels Voila starts inherit this
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(TEMPLATE_ROOT), os.environ.get("JUPYTER_PATH")]))
    print(f"mstoolkit studio: open {url(port)} in a browser (works offline; Ctrl-C stops the server)",
          flush=True)
    os.chdir(APP_NOTEBOOK.parent)  # Voila's root folder: the page's URL is just "/"
    recheck_after_sync_sends()
    Voila.launch_instance(argv=voila_argv(port, open_browser))


def recheck_after_sync_sends() -> None:
    """Make every message sent on an async kernel channel re-check that channel for replies.

    Works around a lost wake-up that stalled the studio page after its first cell (the family of
    voila-dashboards/voila#1428). While Voila runs the app cell, it waits for the cell's
    ``execute_reply`` on the shell channel, an asyncio ZeroMQ socket woken by its edge-triggered
    file descriptor. The app's widgets write into ``ipywidgets.Output`` areas, and nbclient's
    server-side stand-in for them forwards each such output to the kernel as a ``comm_msg`` on that
    same socket, sent *synchronously* (jupyter_client's ``Session.send`` uses a plain shadow of the
    socket). When the reply lands just before one of those sends, the send consumes the wake-up
    and the async socket never hears of the reply: the page waits forever with the kernel idle.
    Reading ``zmq.EVENTS`` through the async socket after each send is pyzmq's documented remedy: it
    schedules the handling of whatever is already queued.
    """
    import zmq
    from jupyter_client.channels import AsyncZMQSocketChannel

    send = AsyncZMQSocketChannel.send
    if getattr(send, "rechecks_events", False):
        return  # already installed (serve() called twice in one process)

    def send_then_recheck(self: AsyncZMQSocketChannel, msg: dict) -> None:
        send(self, msg)
        if self.socket is not None and not self.socket.closed:
            self.socket.get(zmq.EVENTS)  # pyzmq's asyncio socket: schedules pending receives

    send_then_recheck.rechecks_events = True
    AsyncZMQSocketChannel.send = send_then_recheck
