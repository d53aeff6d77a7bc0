"""The command line, run as a person would: real processes, real database, real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jwt
import pytest
import requests

from yishitang.devtools.embedded import free_port

CLI = [sys.executable, "-m", "yishitang.cli"]


def run_cli(*args, env=None, timeout=120):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def port_open(port) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(url, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.stdout.read()}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def test_export_openapi_writes_the_served_contract(tmp_path, client):
    out = tmp_path / "openapi.json"
    result = run_cli("export-openapi", "--output", str(out), env={"MONGODB_URI": ""})
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == client.get("/openapi.json").get_json()


def test_create_admin_then_sign_in(mongo_uri, tmp_path, client):
    env = {"MONGODB_URI": mongo_uri, "MONGODB_DB": "yishitang_cli_admin", "YISHITANG_TESTING": "1"}
    result = run_cli("create-admin", "--username", "chief", "--password", "chief-pass-1", env=env)
    assert result.returncode == 0, result.stderr
    again = run_cli("create-admin", "--username", "chief", "--password", "chief-pass-1", env=env)
    assert again.returncode != 0 and "username_taken" in again.stderr
    short = run_cli("create-admin", "--username", "x", "--password", "short", env=env)
    assert short.returncode == 2 and "--password" in short.stderr
    import pymongo

    pymongo.MongoClient(mongo_uri).drop_database("yishitang_cli_admin")


def test_unreachable_database_is_a_clear_error(tmp_path):
    env = {"MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/", "MONGODB_TIMEOUT_MS": "300", "YISHITANG_TESTING": "1"}
    result = run_cli("create-admin", "--username", "chief", "--password", "chief-pass-1", env=env)
    assert result.returncode == 1 and "无法连接数据库" in result.stderr


def test_missing_secret_outside_demo_is_refused():
    result = run_cli("seed-demo", env={"MONGODB_URI": "mongodb://127.0.0.1:9/", "JWT_SECRET": "", "YISHITANG_DEMO": "",
                                       "YISHITANG_TESTING": ""})
    assert result.returncode == 1 and "JWT_SECRET" in result.stderr


@pytest.mark.parametrize("args", [["serve", "--port", "0"], ["serve", "--port", "http"], ["no-such-command"]])
def test_bad_arguments_exit_2(args):
    assert run_cli(*args).returncode == 2


def start_serve(tmp_path, port):
    env = {**os.environ, "YISHITANG_DEMO": "1", "YISHITANG_DB_PATH": str(tmp_path / "db"), "MONGODB_URI": "",
           "JWT_SECRET": "", "WECHAT_API_BASE": "", "YISHITANG_TESTING": ""}
    env.pop("WECHAT_API_BASE")
    return subprocess.Popen([*CLI, "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)


def stop(process) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    return output


def test_serve_demo_end_to_end_and_data_survives_a_restart(tmp_path):
    """`make run` in miniature: embedded database, demo data, fake WeChat, Ctrl-C, restart."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_serve(tmp_path, port)
    try:
        wait_for(f"{base}/readyz", process)
        login = requests.post(f"{base}/api/v1/auth/wechat-login", json={"code": "demo:demo-resident-1:first"}, timeout=10)
        assert login.status_code == 200, login.text
        resident_id = login.json()["user"]["id"]
        admin = requests.post(f"{base}/api/v1/auth/password-login", json={"username": "admin", "password": "demo-admin-pass"}, timeout=10)
        assert admin.status_code == 200, admin.text
        headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
        studios = requests.get(f"{base}/api/v1/studios", params={"page_size": 1}, headers=headers, timeout=10)
        assert json.loads(studios.headers["X-Pagination"])["total"] == 191
        assert requests.get(f"{base}/docs", timeout=10).status_code == 200
        now = int(time.time())  # a token signed with the key once written in the source
        forged = jwt.encode({"sub": admin.json()["user"]["id"], "type": "access", "iat": now, "exp": now + 600},
                            "yishitang-demo-and-test-only-signing-key-0000", "HS256")
        assert requests.get(f"{base}/api/v1/users", headers={"Authorization": f"Bearer {forged}"},
                            timeout=10).status_code == 401
    finally:
        output = stop(process)
    key_file = tmp_path / "db" / "demo-jwt-secret"
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_text().strip()) >= 32
    assert process.returncode == 0, output
    assert f"{base}/docs" in output and "demo-admin-pass" in output and "demo:demo-resident-1" in output
    db_ports = [int(line.rsplit(":", 1)[1].strip("/")) for line in output.splitlines() if "database:" in line]
    assert db_ports and not port_open(db_ports[0]), "the embedded database outlived serve"

    process = start_serve(tmp_path, port)
    try:
        wait_for(f"{base}/readyz", process)
        again = requests.post(f"{base}/api/v1/auth/wechat-login", json={"code": "demo:demo-resident-1:second"}, timeout=10)
        assert again.json()["user"]["id"] == resident_id
        # The data folder keeps its key: a sign-in from before the restart still works.
        assert requests.get(f"{base}/api/v1/users", headers=headers, timeout=10).status_code == 200
    finally:
        stop(process)


def test_demo_serve_refuses_a_database_it_did_not_start(mongo_uri):
    env = {"YISHITANG_DEMO": "1", "MONGODB_URI": mongo_uri, "MONGODB_DB": "yishitang_cli_demo_refused",
           "JWT_SECRET": "", "YISHITANG_TESTING": ""}
    result = run_cli("serve", "--port", str(free_port()), "--demo-issues", "0", env=env)
    assert result.returncode == 1 and "embedded database" in result.stderr
    import pymongo

    assert "yishitang_cli_demo_refused" not in pymongo.MongoClient(mongo_uri).list_database_names()


def test_demo_serve_never_seeds_a_database_with_other_data(tmp_path):
    env = {"YISHITANG_DB_PATH": str(tmp_path / "db"), "MONGODB_URI": "", "YISHITANG_TESTING": "",
           "JWT_SECRET": "k" * 40, "YISHITANG_DEMO": ""}
    made = run_cli("create-admin", "--username", "chief", "--password", "chief-pass-1", env=env)
    assert made.returncode == 0, made.stderr
    result = run_cli("serve", "--port", str(free_port()), "--demo-issues", "0",
                     env={**env, "YISHITANG_DEMO": "1", "JWT_SECRET": ""})
    assert result.returncode == 1 and "非演示数据 (account chief)" in result.stderr
