"""`yishitang serve` as a real process driven over HTTP (tests that need more than one process)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import requests

from yishitang.devtools.embedded import free_port

CLI = [sys.executable, "-m", "yishitang.cli"]
START_S = 60  # a generous bound: only a server that never comes up takes this long


@contextmanager
def serving(env: dict, log_path, *args: str):
    """Start `yishitang serve` with `env`, yield its base URL once /readyz answers, stop it after."""
    port = free_port()
    with open(log_path, "w+") as log:
        process = subprocess.Popen([*CLI, "serve", "--port", str(port), "--no-scheduler", *args], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_S
            while not _ready(base):
                assert process.poll() is None, open(log_path).read()
                assert time.monotonic() < deadline, "serve did not become ready"
                time.sleep(0.1)  # polling a starting process, not timing anything
            yield base
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _ready(base) -> bool:
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False
