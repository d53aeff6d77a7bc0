"""deploy/ read by the tests: names that must agree, and the files parsed with real parsers
(crossplane for nginx.conf, dockerfile-parse for the Dockerfile, PyYAML for compose and k8s)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import NamedTuple

import crossplane
from dockerfile_parse import DockerfileParser

from yishitang.cli import DEMO_TEMPLATES
from yishitang.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PORT = 8000  # the one port of the API, everywhere
SETTING_VARS = {var for var, _kind, _doc in SETTINGS.values()}
TEMPLATE_VARS = {f"WECHAT_TEMPLATE_{name.upper()}" for name in DEMO_TEMPLATES}
SECRET_VARS = {"JWT_SECRET", "WECHAT_SECRET", "MONGODB_URI"}
# Environment variables that are not the app's settings, and the file that reads each one.
EXTRA_VARS = {
    "PORT": "deploy/gunicorn.conf.py",
    "WEB_CONCURRENCY": "deploy/gunicorn.conf.py",
    "GUNICORN_THREADS": "deploy/gunicorn.conf.py",
    "GUNICORN_TIMEOUT": "deploy/gunicorn.conf.py",
    "LOG_LEVEL": "yishitang/cli.py",
    "BACKUP_DIR": "deploy/backup.sh",
    "BACKUP_KEEP_DAYS": "deploy/backup.sh",
}
APP_VARS = SETTING_VARS | TEMPLATE_VARS | EXTRA_VARS.keys()
COMPOSE_VARIABLES = {"YISHITANG_IMAGE", "HTTP_PORT", "MONGO_CACHE_GB"}
REPLICA_SET_URI = "mongodb://mongo1:27017,mongo2:27017,mongo3:27017/yishitang?replicaSet=rs0"


class Dockerfile(NamedTuple):
    instructions: list  # (INSTRUCTION, arguments): comments dropped, continued lines joined
    images: list  # the base image of each stage, ARGs resolved


def dockerfile(path: Path) -> Dockerfile:
    parser = DockerfileParser(str(path))
    instructions = [(item["instruction"], item["value"]) for item in parser.structure
                    if item["instruction"] != "COMMENT"]
    return Dockerfile(instructions, parser.parent_images)


def nginx_conf(path: Path) -> list[dict]:
    """The directives of nginx.conf; a syntax error, or a known directive out of place or with the wrong
    number of arguments, fails."""
    payload = crossplane.parse(str(path), single=True, check_ctx=True, check_args=True)
    assert payload["status"] == "ok", payload["errors"]
    return payload["config"][0]["parsed"]


def directives(block: list[dict], name: str) -> list[dict]:
    return [item for item in block if item["directive"] == name]


def directive(block: list[dict], name: str) -> dict:
    found = directives(block, name)
    assert len(found) == 1, (name, found)
    return found[0]


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"{path.name}:{number}: {line!r}"
        assert name not in values, f"{path.name}: {name} twice"
        values[name] = value
    return values


def size_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, value
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]


def seconds(value) -> float:
    match = re.fullmatch(r"(\d+)(s|m)?", str(value))
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def gunicorn_conf(env: dict | None = None, monkeypatch=None) -> dict:
    """Execute deploy/gunicorn.conf.py as gunicorn does, with these environment variables."""
    for name in ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def kind(manifests, kind_name: str, name: str | None = None) -> dict:
    found = [doc for _file, doc in manifests
             if doc["kind"] == kind_name and (name is None or doc.get("metadata", {}).get("name") == name)]
    assert len(found) == 1, (kind_name, name, len(found))
    return found[0]


def deployment_container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def app_services(compose) -> dict:
    """The compose services that run the Yishitang image."""
    image = compose["services"]["api1"]["image"]
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == image}
