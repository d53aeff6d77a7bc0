"""The embedded database: SecantusDB (MongoDB wire protocol, WiredTiger storage) as a child process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymongo


class EmbeddedDatabaseError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedDatabase:
    """Start `python -m secantus` on a free loopback port; `stop()` (or the context) ends it."""

    def __init__(self, storage_path: str, host: str = "127.0.0.1", port: int | None = None,
                 log_path: str | None = None, options: tuple[str, ...] = ()):
        self.storage_path = storage_path
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.options = tuple(options)  # more `secantus` flags, e.g. --enable-test-commands for fault tests
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def start(self, timeout: float = 60.0) -> "EmbeddedDatabase":
        if shutil.which(sys.executable) is None:  # pragma: no cover - defensive
            raise EmbeddedDatabaseError("no Python interpreter to run SecantusDB")
        try:
            import secantus  # noqa: F401  (only to give a clear error when the extra is missing)
        except ImportError:
            raise EmbeddedDatabaseError(
                "the embedded database needs the 'embedded' extra: pip install -e '.[embedded]'"
            ) from None
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "secantus", "--host", self.host, "--port", str(self.port),
             "--storage-path", self.storage_path, "--log-level", "WARNING", *self.options],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            # Its own process group: Ctrl-C in a terminal reaches us, and we stop it in order.
            start_new_session=True,
        )
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise EmbeddedDatabaseError(
                        f"SecantusDB exited with code {self.process.returncode} "
                        f"(storage {self.storage_path}); see {self.log_path or 'its output'}"
                    )
                try:
                    client.admin.command("ping")
                    return
                except pymongo.errors.PyMongoError:
                    time.sleep(0.2)
        finally:
            client.close()
        self.stop()
        raise EmbeddedDatabaseError(f"SecantusDB did not answer on {self.uri} within {timeout:.0f}s")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def start_from_env(storage_path: str, log_dir: str | None = None) -> EmbeddedDatabase:
    log_path = os.path.join(log_dir, "secantus.log") if log_dir else None
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    return EmbeddedDatabase(storage_path, log_path=log_path).start()
