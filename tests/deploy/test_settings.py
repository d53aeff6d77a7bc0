"""deploy/: setting names and sample values agree with yishitang/config.py; gunicorn's config."""

from __future__ import annotations

import multiprocessing

import pytest
from pymongo.uri_parser import parse_uri

from tests.deploy.files import (APP_VARS, DEPLOY, EXTRA_VARS, PORT, ROOT, SETTING_VARS, TEMPLATE_VARS, env_file,
                                gunicorn_conf)
from yishitang.config import SETTINGS, ConfigError, Settings


# Settings and environment variable names.


def test_extra_variables_are_read_where_they_are_claimed():
    for var, reader in EXTRA_VARS.items():
        source = (ROOT / reader).read_text(encoding="utf-8")
        assert var in source, (var, reader)
        assert var not in SETTING_VARS, f"{var} is a setting now: drop it from EXTRA_VARS"


def test_sample_env_names_every_setting_and_nothing_unknown():
    sample = env_file(DEPLOY / "yishitang.env.example")
    missing = (SETTING_VARS | TEMPLATE_VARS) - sample.keys()
    assert not missing, f"add to deploy/yishitang.env.example: {sorted(missing)}"
    unknown = sample.keys() - APP_VARS
    assert not unknown, f"not settings of yishitang/config.py: {sorted(unknown)}"
    # The commented process settings name the gunicorn variables too.
    text = (DEPLOY / "yishitang.env.example").read_text(encoding="utf-8")
    for var in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT"):
        assert f"# {var}=" in text, var


def test_sample_env_values_are_valid_and_are_the_defaults():
    """The sample's values parse, and equal the defaults in config.py (but the example URI)."""
    sample = env_file(DEPLOY / "yishitang.env.example")
    key = "k" * 32
    from_sample = Settings.from_env(env={**sample, "JWT_SECRET": key})
    defaults = Settings.from_env(env={"JWT_SECRET": key})
    for name, (var, _kind, _doc) in SETTINGS.items():
        if var == "MONGODB_URI":
            assert parse_uri(sample[var])["options"]["replicaSet"] == "rs0"
            continue
        assert getattr(from_sample, name) == getattr(defaults, name), (var, sample[var])


def test_the_sample_env_refuses_to_start_until_the_secret_is_set():
    sample = env_file(DEPLOY / "yishitang.env.example")
    assert sample["JWT_SECRET"] == "" and sample["YISHITANG_DEMO"] == "0"
    with pytest.raises(ConfigError):
        Settings.from_env(env=sample)


# gunicorn.conf.py


def test_gunicorn_conf_defaults(monkeypatch):
    conf = gunicorn_conf(monkeypatch=monkeypatch)
    assert conf["bind"] == f"0.0.0.0:{PORT}"
    assert conf["workers"] == conf["cpu_count"]() * 2 + 1
    assert 1 <= conf["cpu_count"]() <= multiprocessing.cpu_count()
    assert conf["preload_app"] is False  # one MongoDB client per worker, opened after the fork
    assert conf["accesslog"] == "-" and conf["errorlog"] == "-"
    assert conf["loglevel"] == "info"
    assert 0 < conf["graceful_timeout"] <= conf["timeout"]
    assert "x-forwarded-for" in conf["access_log_format"]
    assert conf["control_socket_disable"] is True


def test_gunicorn_conf_reads_its_environment(monkeypatch):
    conf = gunicorn_conf({"PORT": "9123", "WEB_CONCURRENCY": "5", "GUNICORN_THREADS": "4",
                          "GUNICORN_TIMEOUT": "90", "LOG_LEVEL": "WARNING"}, monkeypatch=monkeypatch)
    assert (conf["bind"], conf["workers"], conf["threads"], conf["timeout"], conf["loglevel"]) == \
        ("0.0.0.0:9123", 5, 4, 90, "warning")


def test_gunicorn_worker_count_follows_the_cgroup_cpu_limit(monkeypatch, tmp_path):
    conf = gunicorn_conf(monkeypatch=monkeypatch)
    cpu_count, host = conf["cpu_count"], conf["cpu_count"](str(tmp_path / "none"))
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("50000 100000\n")  # half a CPU: one
    assert cpu_count(str(v2)) == 1
    (v2 / "cpu.max").write_text("max 100000\n")  # unlimited
    assert cpu_count(str(v2)) == host
    (v2 / "cpu.max").write_text(f"{(host + 7) * 100000} 100000\n")  # more than there is
    assert cpu_count(str(v2)) == host
    v1 = tmp_path / "v1" / "cpu,cpuacct"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_count(str(tmp_path / "v1")) == 1
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu_count(str(tmp_path / "v1")) == host
