"""The parsed deploy files, once per module."""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.files import DEPLOY, K8S, dockerfile as parse_dockerfile, nginx_conf


@pytest.fixture(scope="module")
def dockerfile():
    return parse_dockerfile(DEPLOY / "Dockerfile")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def nginx():
    return nginx_conf(DEPLOY / "nginx.conf")


@pytest.fixture(scope="module")
def manifests():
    """Every document of every file in deploy/k8s, as (file name, document)."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert isinstance(document, dict) and document.get("kind"), (path.name, document)
            found.append((path.name, document))
    return found
