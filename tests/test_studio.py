"""`mstoolkit studio`: the launcher's arguments and errors, the shipped app, and a real server whose
page links nothing outside the machine (the browser test, tests/test_browser.py, clicks through it)."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from mstoolkit import studio
from mstoolkit.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_help_names_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["studio", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--port", "--no-browser", "--model"):
        assert option in out


def test_studio_is_listed_in_the_main_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "studio" in capsys.readouterr().out


@pytest.mark.parametrize("port", ["0", "70000"])
def test_port_out_of_range_is_one_line_error(port, capsys):
    assert main(["studio", "--no-browser", "--port", port]) == 2
    err = capsys.readouterr().err
    assert "between 1 and 65535" in err and "Traceback" not in err


def test_port_in_use_is_refused(capsys):
    with _listening_socket() as busy:
        port = busy.getsockname()[1]
        assert not studio.port_is_free(port)
        assert main(["studio", "--no-browser", "--port", str(port)]) == 2
    assert f"--port {port}: the port is in use" in capsys.readouterr().err


def test_free_port_prefers_the_default_and_avoids_a_busy_one():
    with _listening_socket() as busy:
        port = busy.getsockname()[1]
        chosen = studio.free_port(preferred=port)
        assert chosen != port and studio.port_is_free(chosen)
    assert studio.free_port(preferred=chosen) == chosen


def test_unknown_model_is_refused_before_a_server_starts(capsys):
    assert main(["studio", "--no-browser", "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "no-such-model" in err and "demo" in err  # names what is available


def test_missing_voila_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "voila.app", None)  # import voila.app now raises ImportError
    assert main(["studio", "--no-browser"]) == 2
    err = capsys.readouterr().err  # one line naming the extra that brings Voila
    assert 'pip install "mstoolkit[studio]"' in err and err.count("\n") == 1


def test_voila_arguments_serve_the_app_on_loopback_only():
    argv = studio.voila_argv(8999, open_browser=False)
    assert argv[0] == str(studio.APP_NOTEBOOK)
    assert "--port=8999" in argv and "--Voila.ip=127.0.0.1" in argv and "--no-browser" in argv
    assert f"--template={studio.TEMPLATE}" in argv
    assert "--no-browser" not in studio.voila_argv(8999, open_browser=True)
    assert studio.url(8999) == "http://127.0.0.1:8999/"


def test_app_notebook_is_clean_and_uses_the_studio_widgets():
    nb = nbformat.read(studio.APP_NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "TransferStudio(" in code and "StyleGallery(" in code and studio.MODEL_ENV in code
    assert all(not c.outputs and c.execution_count is None for c in nb.cells if c.cell_type == "code")


def test_app_files_are_package_data():
    """A non-editable install must ship the app notebook and the Voila template."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["mstoolkit"]
    package = ROOT / "mstoolkit"
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    template = studio.TEMPLATE_ROOT / "voila" / "templates" / studio.TEMPLATE
    for needed in (studio.APP_NOTEBOOK, template / "index.html.j2", template / "conf.json"):
        assert needed.is_file() and needed in shipped, f"{needed} is not package data"


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_studio_serves_a_page_that_links_nothing_outside(tmp_path):
    """A real `mstoolkit studio --no-browser`: it prints the URL, and the page Voila renders (the app
    executed, widgets included) loads scripts and styles only from this machine."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = Path(sys.executable).parent / "mstoolkit"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "mstoolkit.cli"]
    log = tmp_path / "studio.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command + ["studio", "--no-browser", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        assert f"open http://127.0.0.1:{port}/ in a browser" in log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120) as response:
            assert response.status == 200
            page = response.read().decode()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert "mst-studio" in page or "TransferStudio" in page or "Transfer" in page
    assert "There was an error when executing cell" not in page, page[-3000:]
    links = re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"([^\"]+)\"", page)
    outside = [url for url in links if re.match(r"(https?:)?//", url) and "127.0.0.1" not in url]
    assert links and not outside, f"the page loads from outside this machine: {outside}"


def test_a_send_on_the_shell_channel_does_not_swallow_a_waiting_reply(monkeypatch):
    """The studio-page stall, reproduced with real sockets: Voila awaits a reply on an async DEALER
    socket; the reply arrives; then a synchronous send on that socket (nbclient's Output-widget
    stand-in does one) processes ZeroMQ's wake-up before asyncio sees it. Without
    `recheck_after_sync_sends` the wait below hangs until the timeout; with it, the reply is read."""
    import asyncio

    import zmq
    import zmq.asyncio
    from jupyter_client.channels import AsyncZMQSocketChannel
    from jupyter_client.session import Session

    # undone after the test: other tests in this process see jupyter_client as shipped
    monkeypatch.setattr(AsyncZMQSocketChannel, "send", AsyncZMQSocketChannel.send)
    studio.recheck_after_sync_sends()
    studio.recheck_after_sync_sends()  # idempotent: wraps once
    assert AsyncZMQSocketChannel.send.rechecks_events

    async def scenario() -> dict:
        session = Session(key=b"")
        context = zmq.asyncio.Context()
        kernel = context.socket(zmq.ROUTER)  # plays the kernel's shell socket
        port = kernel.bind_to_random_port("tcp://127.0.0.1")
        client = context.socket(zmq.DEALER)  # plays Voila's shell channel
        client.connect(f"tcp://127.0.0.1:{port}")
        channel = AsyncZMQSocketChannel(client, session)
        try:
            channel.send(session.msg("execute_request", {"code": "1"}))
            identity, *_ = await asyncio.wait_for(kernel.recv_multipart(), 5)
            waiting = asyncio.ensure_future(channel.get_msg())  # nbclient's wait for execute_reply
            await asyncio.sleep(0.1)  # the wait is registered on the socket's file descriptor
            # Without returning to the event loop: the reply arrives, then a synchronous send.
            session.send(zmq.Socket.shadow(kernel.underlying), "execute_reply", {"status": "ok"},
                         ident=identity)
            time.sleep(0.2)  # ZeroMQ's I/O thread delivers it and signals the client socket
            channel.send(session.msg("comm_msg", {"comm_id": "out", "data": {}}))
            return await asyncio.wait_for(waiting, 5)
        finally:
            for sock in (client, kernel):
                sock.close(linger=0)
            context.term()

    reply = asyncio.run(scenario())
    assert reply["msg_type"] == "execute_reply"
