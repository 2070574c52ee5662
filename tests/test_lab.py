"""`make lab ARGS=--no-browser` serves JupyterLab on chapters/."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


@pytest.mark.timeout(180)
def test_make_lab_serves_jupyterlab(tmp_path):
    if not (ROOT / ".venv" / ".installed-stamp").exists():
        pytest.skip("make lab needs the course's .venv (created by `make test`)")
    port, token = _free_port(), "course-test-token"
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token}"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    server = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"ARGS={args}"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        status, deadline = 0, time.monotonic() + 120
        while status != 200 and time.monotonic() < deadline and server.poll() is None:
            time.sleep(1)
            status = _get(f"http://127.0.0.1:{port}/lab?token={token}")
        assert status == 200, f"JupyterLab did not answer 200 on /lab (last status {status})"
        tree = _get(f"http://127.0.0.1:{port}/api/contents/00_getting_started.ipynb?content=0&token={token}")
        assert tree == 200, "the lab does not serve chapters/ as its root"
        url = (f"http://127.0.0.1:{port}/lab/api/settings/@jupyterlab/apputils-extension:"
               f"notification?token={token}")
        with urllib.request.urlopen(url, timeout=10) as response:
            defaults = {k: v["default"] for k, v in json.load(response)["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, (
            "the course's settings should switch off JupyterLab's news prompt ('none' asks)")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
