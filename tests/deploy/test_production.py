"""What runs here of deploy/: gunicorn with the production config, the health checks, the scheduler's check."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.deploy.files import APP_VARS, DEPLOY, ROOT, kind
from yishitang.devtools.embedded import free_port


# What runs here: the production entrypoint, the health checks, the scheduler's check.


@pytest.fixture
def production_env(settings, fake_wechat):
    """The environment of a production container: no test or demo mode, a real secret."""
    env = {key: value for key, value in os.environ.items()
           if key not in APP_VARS and not key.startswith("WECHAT_TEMPLATE_")}
    env.update({
        "MONGODB_URI": settings.mongodb_uri,
        "MONGODB_DB": f"{settings.mongodb_db}_deploy",
        "JWT_SECRET": secrets.token_urlsafe(48),
        "WECHAT_APPID": fake_wechat.appid,
        "WECHAT_SECRET": fake_wechat.secret,
        "WECHAT_API_BASE": fake_wechat.url,
        "YISHITANG_DEMO": "0",
        "YISHITANG_TESTING": "0",
        "LOG_LEVEL": "INFO",
        # deploy/healthcheck.py imports yishitang as the image has it installed.
        "PYTHONPATH": str(ROOT),
    })
    yield env
    from pymongo import MongoClient

    with MongoClient(settings.mongodb_uri) as client:
        client.drop_database(env["MONGODB_DB"])


def start(command, env, log_path):
    log = open(log_path, "w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    process.log_file = log
    return process


def stop(process, timeout=30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    process.log_file.close()
    return process.returncode


def healthcheck(*args, env):
    return subprocess.run([sys.executable, str(DEPLOY / "healthcheck.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def wait_until(condition, process, log_path, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited early ({process.returncode}):\n{Path(log_path).read_text()}")
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out:\n{Path(log_path).read_text()}")


def answers(url) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_gunicorn_serves_the_app_with_the_production_config(production_env, tmp_path):
    port = free_port()
    # As the compose API containers run: one proxy in front (PROXY_COUNT=1).
    env = {**production_env, "PORT": str(port), "WEB_CONCURRENCY": "1", "PROXY_COUNT": "1",
           "RATE_LIMIT_LOGIN": "2/86400"}
    log_path = tmp_path / "gunicorn.log"
    command = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"]
    process = start(command, env, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{base}/healthz"), process, log_path)
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        ready = requests.get(f"{base}/readyz", timeout=5, headers={"X-Forwarded-For": "203.0.113.7"})
        assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": True}
        # The container health checks, as compose and the image run them.
        assert healthcheck("/readyz", env=env).returncode == 0
        assert healthcheck(env=env).returncode == 0
        missing = healthcheck("/no-such-page", env=env)
        assert missing.returncode == 1 and "404" in missing.stderr
        assert healthcheck("readyz", env=env).returncode == 2  # usage
        # The app is the production one: a password login reaches the database and says no; the
        # login rate limit counts the client that nginx names in X-Forwarded-For, not nginx.
        def login(client_ip):
            return requests.post(f"{base}/api/v1/auth/password-login", timeout=5,
                                 headers={"X-Forwarded-For": f"198.51.100.99, {client_ip}"},
                                 json={"username": "nobody", "password": "x" * 12}).status_code

        assert [login("203.0.113.7") for _ in range(3)] == [401, 401, 429]
        assert login("203.0.113.8") == 401
    finally:
        code = stop(process)
    log = log_path.read_text()
    assert code == 0, log  # graceful shutdown on SIGTERM
    assert f"Listening at: http://0.0.0.0:{port}" in log
    assert log.count("Booting worker with pid") == 1, log  # WEB_CONCURRENCY=1
    # The access log: the forwarded-for header, then the client address the app settled on.
    assert re.search(r'^203\.0\.113\.7 203\.0\.113\.7 "GET /readyz HTTP/1\.1" 200 ', log, flags=re.M), log
    assert "Control socket" not in log
    assert "Shutting down: Master" in log
    assert healthcheck(env=env).returncode == 1  # nothing listens any more


def test_gunicorn_refuses_to_start_with_the_placeholder_secret(production_env, manifests, tmp_path):
    placeholder = kind(manifests, "Secret")["stringData"]["JWT_SECRET"]
    env = {**production_env, "PORT": str(free_port()), "WEB_CONCURRENCY": "1", "JWT_SECRET": placeholder}
    log_path = tmp_path / "gunicorn.log"
    process = start([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"], env, log_path)
    try:
        process.wait(60)
    finally:
        stop(process)
    assert process.returncode != 0
    assert "JWT_SECRET must be at least 32 characters" in log_path.read_text()


def test_scheduler_health_check(production_env, tmp_path):
    from pymongo import MongoClient

    env = production_env
    with MongoClient(env["MONGODB_URI"]) as client:
        runs = client[env["MONGODB_DB"]]["job_runs"]
        runs.delete_many({})
        def unhealthy(result):
            return result.returncode == 1 and "no job run by" in result.stderr

        assert unhealthy(healthcheck("scheduler", "60", env=env))  # nothing ran
        now = dt.datetime.now(dt.timezone.utc)
        runs.insert_one({"_id": "send_outbox:1", "holder": "another-host:1", "started_at": now})
        assert unhealthy(healthcheck("scheduler", "60", env=env))  # another pod's run
        runs.insert_one({"_id": "send_outbox:2", "holder": f"{socket.gethostname()}:1",
                         "started_at": now - dt.timedelta(minutes=5)})
        assert unhealthy(healthcheck("scheduler", "60", env=env))  # too long ago
        runs.update_one({"_id": "send_outbox:1"}, {"$push": {"skipped_by": f"{socket.gethostname()}:7"}})
        assert healthcheck("scheduler", "60", env=env).returncode == 0  # found the slot taken: alive
        runs.delete_many({})
        assert healthcheck("scheduler", "x", env=env).returncode == 2  # usage
        down = healthcheck("scheduler", env={**env, "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/",
                                             "MONGODB_TIMEOUT_MS": "300"})
        assert down.returncode == 1 and "job_runs:" in down.stderr, down.stderr  # database unreachable

        # The real thing: `yishitang scheduler`, as the scheduler container runs it.
        log_path = tmp_path / "scheduler.log"
        process = start([sys.executable, "-m", "yishitang.cli", "scheduler"], env, log_path)
        try:
            wait_until(lambda: healthcheck("scheduler", "60", env=env).returncode == 0, process, log_path,
                       timeout=60)
        finally:
            code = stop(process)
        assert code == 0, log_path.read_text()
        assert runs.count_documents({"holder": re.compile("^" + re.escape(socket.gethostname()) + ":")}) >= 1
