"""deploy/backup.sh and restore.sh: bad arguments refused, stand-ins for the MongoDB tools driven right."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.files import DEPLOY, ROOT


# backup.sh and restore.sh, without the MongoDB tools: bad arguments, then stand-ins.

SCRIPTS = ("backup.sh", "restore.sh")
SYSTEM_PATH = "/usr/bin:/bin"
BASH = shutil.which("bash") or "/bin/bash"


def run_script(script, *args, env=None, path=SYSTEM_PATH):
    base = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    return subprocess.run([BASH, str(DEPLOY / script), *args], capture_output=True, text=True,
                          timeout=30, env={**base, **(env or {})})


def fake_tool(bin_dir: Path, name: str, body: str) -> Path:
    """A stand-in for a MongoDB tool: records its arguments, one per line, then runs `body`."""
    bin_dir.mkdir(exist_ok=True)
    record = bin_dir / f"{name}.args"
    tool = bin_dir / name
    tool.write_text(f"#!/bin/bash\nprintf '%s\\n' \"$@\" > {shlex.quote(str(record))}\n{body}\n")
    tool.chmod(0o755)
    return record


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_valid_bash_in_strict_mode(script):
    text = (DEPLOY / script).read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.access(DEPLOY / script, os.X_OK)
    result = subprocess.run([BASH, "-n", str(DEPLOY / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script, args, env, message", [
    ("backup.sh", ["--bogus"], {"MONGODB_URI": "mongodb://x/"}, "unknown argument"),
    ("backup.sh", ["extra"], {"MONGODB_URI": "mongodb://x/"}, "unknown argument"),
    ("backup.sh", ["-k", "0"], {"MONGODB_URI": "mongodb://x/"}, "at least 1"),
    ("backup.sh", ["-k", "two"], {"MONGODB_URI": "mongodb://x/"}, "whole number"),
    ("backup.sh", ["-d"], {"MONGODB_URI": "mongodb://x/"}, "needs a value"),
    ("backup.sh", [], {}, "MONGODB_URI is not set"),
    ("restore.sh", [], {"MONGODB_URI": "mongodb://x/"}, "no ARCHIVE"),
    ("restore.sh", ["{archive}"], {"MONGODB_URI": "mongodb://x/"}, "refusing to restore"),
    ("restore.sh", ["--yes-drop-existing"], {"MONGODB_URI": "mongodb://x/"}, "no ARCHIVE"),
    ("restore.sh", ["--yes-drop-existing", "{archive}"], {}, "no target"),
    ("restore.sh", ["--yes-drop-existing", "/nonexistent.gz"], {"MONGODB_URI": "mongodb://x/"}, "cannot read"),
    ("restore.sh", ["--yes-drop-existing", "{archive}", "{archive}"], {"MONGODB_URI": "mongodb://x/"}, "one archive"),
    ("restore.sh", ["--force", "{archive}"], {"MONGODB_URI": "mongodb://x/"}, "unknown option"),
])
def test_scripts_print_usage_and_fail_on_bad_arguments(tmp_path, script, args, env, message):
    archive = tmp_path / "yishitang-20260101T000000Z.archive.gz"
    archive.write_bytes(b"archive")
    bin_dir = tmp_path / "bin"
    record = fake_tool(bin_dir, "mongorestore" if script == "restore.sh" else "mongodump", "exit 0")
    args = [arg.replace("{archive}", str(archive)) for arg in args]
    result = run_script(script, *args, env={"BACKUP_DIR": str(tmp_path / "out"), **env},
                        path=f"{bin_dir}:{SYSTEM_PATH}")
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert message in result.stderr
    assert f"usage: {script}" in result.stderr
    assert not record.exists(), "the tool ran despite bad arguments"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_help(script):
    result = run_script(script, "--help")
    assert result.returncode == 0 and f"usage: {script}" in result.stderr


def test_scripts_say_when_the_tool_is_missing(tmp_path):
    archive = tmp_path / "a.archive.gz"
    archive.write_bytes(b"archive")
    empty = tmp_path / "empty"
    empty.mkdir()
    backup = run_script("backup.sh", "-d", str(tmp_path / "out"), env={"MONGODB_URI": "mongodb://x/"},
                        path=str(empty))
    assert backup.returncode == 127 and "mongodump not found" in backup.stderr
    restore = run_script("restore.sh", "--yes-drop-existing", str(archive), env={"MONGODB_URI": "mongodb://x/"},
                         path=str(empty))
    assert restore.returncode == 127 and "mongorestore not found" in restore.stderr


def test_backup_writes_a_timestamped_archive_and_keeps_n_days(tmp_path):
    bin_dir, out = tmp_path / "bin", tmp_path / "backups"
    # The stand-in writes what --archive=FILE names, as mongodump does.
    record = fake_tool(bin_dir, "mongodump", 'for a; do case "$a" in --archive=*) echo dump > "${a#--archive=}";; esac; done')
    out.mkdir()
    now = time.time()
    ages = {"yishitang-20250101T000000Z.archive.gz": 8, "yishitang-20250105T000000Z.archive.gz": 6.5,
            "notes.txt": 30, "other-20250101T000000Z.archive.gz": 30}
    for name, days in ages.items():
        (out / name).write_text("old")
        os.utime(out / name, (now - days * 86400, now - days * 86400))

    uri = "mongodb://mongo1:27017,mongo2:27017/yishitang?replicaSet=rs0"
    result = run_script("backup.sh", "-d", str(out), "-k", "7", "--", "--readPreference=secondaryPreferred",
                        env={"MONGODB_URI": uri}, path=f"{bin_dir}:{SYSTEM_PATH}")
    assert result.returncode == 0, result.stderr
    written = Path(result.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"yishitang-\d{8}T\d{6}Z\.archive\.gz", written.name), written
    assert written.read_text() == "dump\n"
    args = record.read_text().splitlines()
    assert args == ["--uri", uri, f"--archive={written}.partial", "--gzip", "--readPreference=secondaryPreferred"]
    remaining = {path.name for path in out.iterdir()}
    assert remaining == {written.name, "yishitang-20250105T000000Z.archive.gz", "notes.txt",
                         "other-20250101T000000Z.archive.gz"}
    assert "deleted old" in result.stderr and "yishitang-20250101T000000Z" in result.stderr

    # BACKUP_DIR and BACKUP_KEEP_DAYS from the environment, as the compose service sets them.
    again = run_script("backup.sh", env={"MONGODB_URI": uri, "BACKUP_DIR": str(out), "BACKUP_KEEP_DAYS": "1"},
                       path=f"{bin_dir}:{SYSTEM_PATH}")
    assert again.returncode == 0, again.stderr
    assert "yishitang-20250105T000000Z.archive.gz" not in {path.name for path in out.iterdir()}


def test_a_failed_backup_leaves_nothing_and_deletes_nothing(tmp_path):
    bin_dir, out = tmp_path / "bin", tmp_path / "backups"
    fake_tool(bin_dir, "mongodump", 'for a; do case "$a" in --archive=*) echo half > "${a#--archive=}";; esac; done; exit 1')
    out.mkdir()
    old = out / "yishitang-20240101T000000Z.archive.gz"
    old.write_text("old")
    os.utime(old, (time.time() - 100 * 86400,) * 2)
    result = run_script("backup.sh", "-d", str(out), "-k", "1", env={"MONGODB_URI": "mongodb://x/yishitang"},
                        path=f"{bin_dir}:{SYSTEM_PATH}")
    assert result.returncode != 0
    assert [path.name for path in out.iterdir()] == [old.name], "no partial archive, the old one kept"


def test_restore_runs_mongorestore_with_drop(tmp_path):
    bin_dir = tmp_path / "bin"
    record = fake_tool(bin_dir, "mongorestore", "exit 0")
    archive = tmp_path / "yishitang-20260101T000000Z.archive.gz"
    archive.write_bytes(b"archive")
    result = run_script("restore.sh", "--yes-drop-existing", str(archive),
                        env={"MONGODB_URI": "mongodb://db/yishitang?replicaSet=rs0"},
                        path=f"{bin_dir}:{SYSTEM_PATH}")
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == ["--uri", "mongodb://db/yishitang?replicaSet=rs0", "--drop",
                                               f"--archive={archive}", "--gzip"]

    # The drill: another target, renamed namespaces.
    drill = run_script("restore.sh", "--uri", "mongodb://scratch/?replicaSet=rs0", "--yes-drop-existing",
                       str(archive), "--", "--nsInclude", "yishitang.*", "--nsFrom", "yishitang.*",
                       "--nsTo", "yishitang_drill.*", env={}, path=f"{bin_dir}:{SYSTEM_PATH}")
    assert drill.returncode == 0, drill.stderr
    assert record.read_text().splitlines() == [
        "--uri", "mongodb://scratch/?replicaSet=rs0", "--drop", f"--archive={archive}", "--gzip",
        "--nsInclude", "yishitang.*", "--nsFrom", "yishitang.*", "--nsTo", "yishitang_drill.*"]

    failing = fake_tool(bin_dir, "mongorestore", "exit 3")
    broken = run_script("restore.sh", "--yes-drop-existing", str(archive), env={"MONGODB_URI": "mongodb://db/"},
                        path=f"{bin_dir}:{SYSTEM_PATH}")
    assert broken.returncode == 3 and failing.exists()


def test_readme_has_the_restore_drill():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    drill = readme[readme.index("## Backup and restore"):]
    for step in ("Take a backup", "scratch database", "--nsFrom", "--nsTo", "mongosh", "countDocuments",
                 "Switch over", "--yes-drop-existing"):
        assert step in drill, step
    top = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", top, flags=re.M)
    at = sections.index("Running against a real MongoDB")
    assert sections[at + 1] == "Deploying to production"
    assert "deploy/README.md" in top[top.index("## Deploying to production"):]
