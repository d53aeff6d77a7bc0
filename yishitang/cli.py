"""The `yishitang` command line: serve, seed-demo, create-admin, export-openapi, stats."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pymongo.errors

from .config import ConfigError, Settings

log = logging.getLogger("yishitang")
SPEC_PATH = Path("schemas/openapi.json")


def _settings(**overrides) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ConfigError as exc:
        raise click.ClickException(f"配置错误 (configuration error): {exc}") from None


@contextlib.contextmanager
def _database(settings: Settings):
    """Yield settings with a database: MONGODB_URI when set, else the embedded one for the duration."""
    if settings.mongodb_uri:
        yield settings
        return
    from .devtools import EmbeddedDatabase, EmbeddedDatabaseError

    path = settings.embedded_db_path
    click.echo(f"starting the embedded database (SecantusDB) in {path} ...", err=True)  # stdout: the output
    try:
        server = EmbeddedDatabase(path, log_path=str(Path(path).parent / "secantus.log")).start()
    except EmbeddedDatabaseError as exc:
        raise click.ClickException(f"无法启动内置数据库 (embedded database failed): {exc}") from None
    try:
        started = settings.replace(mongodb_uri=server.uri, embedded_started=True)
        if started.demo and not started.jwt_secret:
            started = started.replace(jwt_secret=_demo_secret(Path(path)))
        yield started
    finally:
        server.stop()


def _demo_secret(folder: Path) -> str:
    """The demo's signing key: random, made once per data folder and kept there, readable by its owner only."""
    path = folder / "demo-jwt-secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= 32:
            return key
        raise click.ClickException(f"{path} 内容无效 (invalid demo key): delete it to make a new one") from None
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


@contextlib.contextmanager
def _reachable():
    """Turn an unreachable database into a clear message and a non-zero exit."""
    try:
        yield
    except pymongo.errors.ConnectionFailure as exc:
        raise click.ClickException(f"无法连接数据库 (database unreachable): {exc}") from None


def _app(settings: Settings):
    from . import create_app

    try:
        return create_app(settings)
    except ConfigError as exc:
        raise click.ClickException(f"配置错误 (configuration error): {exc}") from None


@click.group()
def main():
    """议事堂 Yishitang: grassroots consultation backend."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--scheduler/--no-scheduler", "with_scheduler", default=None,
              help="also run `yishitang scheduler` as a child process (default: with the embedded database)")
@click.option("--demo-issues", default=None, type=click.IntRange(0, 100_000),
              help="demo mode: issues of the last year to add when the database has none [default: 1000]")
def serve(host, port, with_scheduler, demo_issues):
    """Run the API (embedded database when MONGODB_URI is unset; demo data in demo mode)."""
    settings = _settings()
    if with_scheduler is None:
        with_scheduler = not settings.mongodb_uri
    with contextlib.ExitStack() as stack:
        settings = stack.enter_context(_database(settings))
        if settings.demo and "WECHAT_API_BASE" not in os.environ:
            from .devtools import FakeWeChat

            # Media-check verdicts are pushed back to this server's message-push URL, signed.
            fake = FakeWeChat(appid=settings.wechat_appid or "wx-demo-appid",
                              secret=settings.wechat_secret or "wx-demo-secret", demo=True,
                              push_token=settings.push_token,
                              push_url=f"http://{host}:{port}/api/v1/wechat/events").start()
            stack.callback(fake.stop)
            # The fake grants every demo user every template, so the demo's messages are "sent".
            templates = {key: f"demo-{key}" for key in DEMO_TEMPLATES} | settings.wechat_templates
            settings = settings.replace(wechat_api_base=fake.url, wechat_appid=fake.appid,
                                        wechat_secret=fake.secret, wechat_templates=templates)
        app = _app(settings)
        if settings.demo:
            from .devtools import DEMO_ISSUES, DEMO_LOGINS, seed_demo

            with app.app_context(), _reachable():
                _refuse_foreign_data()
                seed_demo(progress=True)
                _seed_demo_issues(DEMO_ISSUES if demo_issues is None else demo_issues)
            _banner(host, port, settings, DEMO_LOGINS)
        else:
            _banner(host, port, settings, [])
        if with_scheduler:
            stack.callback(_stop, _start_scheduler(settings))
        from werkzeug.serving import run_simple

        for signum in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored (`cmd &`)
            signal.signal(signum, _interrupt)
        try:
            run_simple(host, port, app, threaded=True, use_reloader=False)
        except KeyboardInterrupt:
            pass
        click.echo("stopping ...")


DEMO_TEMPLATES = ("issue_status", "rate", "consultation", "reminder", "overdue")


def _start_scheduler(settings):
    """`yishitang scheduler` as a child process sharing this database and WeChat endpoint."""
    # Not in demo mode: the child did not start the database (demo's only use there is the key it is given).
    env = {**os.environ, "MONGODB_URI": settings.mongodb_uri, "MONGODB_DB": settings.mongodb_db,
           "JWT_SECRET": settings.jwt_secret, "YISHITANG_DEMO": "",
           "WECHAT_API_BASE": settings.wechat_api_base, "WECHAT_APPID": settings.wechat_appid,
           "WECHAT_SECRET": settings.wechat_secret,
           **{f"WECHAT_TEMPLATE_{key.upper()}": value for key, value in settings.wechat_templates.items()}}
    return subprocess.Popen([sys.executable, "-m", "yishitang.cli", "scheduler"], env=env,
                            start_new_session=True)


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _banner(host, port, settings, logins):
    base = f"http://{host}:{port}"
    lines = [
        "",
        f"议事堂 API on {base}",
        f"  API docs:    {base}/docs      (OpenAPI: {base}/openapi.json)",
        f"  database:    {settings.mongodb_uri}",
    ]
    if settings.demo:
        lines.append(f"  fake WeChat: {settings.wechat_api_base}  (demo mode)")
        lines.append("  demo logins:")
        for item in logins:
            lines.append(f"    {item['role']:<12} {item['how']}")
    lines.append("  Ctrl-C stops everything started here; data stays in " + settings.embedded_db_path)
    click.echo("\n".join(lines) + "\n")


@main.command()
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0.001, 100),
              help="multiply every job interval (tests use small values)")
def scheduler(scale):
    """Run the timed jobs (outbox, reminders, deadlines, auto-close, rollups) in this process."""
    settings = _settings()
    if not settings.mongodb_uri:
        raise click.ClickException("MONGODB_URI 未设置：调度进程需连接与 API 相同的数据库 (set MONGODB_URI)")
    from . import scheduler as scheduling

    app = _app(settings)
    with app.app_context(), _reachable():
        from . import db

        db.client().admin.command("ping")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    scheduling.run_forever(app, scale=scale)


def _seed_demo_issues(count: int) -> dict:
    """A year of demo issues when the database has none; says on stderr what it added and how fast."""
    from .devtools import seed_demo_issues

    if not count:
        return {"issues": 0, "neighbours": 0}
    started = time.monotonic()
    added = seed_demo_issues(count)
    if added["issues"]:
        click.echo(f"演示议题 (demo issues): {added['issues']} of the last year added in "
                   f"{time.monotonic() - started:.1f} s", err=True)
    return added


def _refuse_foreign_data() -> None:
    from .devtools import foreign_data

    found = foreign_data()
    if found:
        raise click.ClickException(f"数据库中已有非演示数据 ({found})，不写入演示账号 (the database holds data "
                                   "that is not the demo's: demo accounts are never added to it)")


@main.command("seed-demo")
@click.option("--issues", "issue_count", default=0, show_default=True, type=click.IntRange(0, 100_000),
              help="also add this many issues of the last year, when the database has no issues yet")
def seed_demo_command(issue_count):
    """Load the demo district (idempotent: a second run adds nothing)."""
    settings = _settings()
    with _database(settings) as settings, _reachable():
        from .devtools import seed_demo

        app = _app(settings)
        with app.app_context():
            _refuse_foreign_data()
            counts = seed_demo(progress=True)
            if issue_count:
                from .issues.models import Issue

                created = _seed_demo_issues(issue_count)["issues"]
                counts.update(issues=Issue.objects.count(), created_issues=created)
    click.echo(json.dumps(counts, ensure_ascii=False))


@main.command("seed-load")
@click.option("--issues", "count", required=True, type=click.IntRange(1, 10_000_000), help="how many issues to add")
@click.option("--districts", default=1, show_default=True, type=click.IntRange(1, 500),
              help="a city: more districts shaped like the demo one (16 townships, 192 studios each)")
@click.option("--seed", default=7, show_default=True, type=int, help="random seed (same seed, same data)")
def seed_load(count, districts, seed):
    """Add a realistic load: residents and issues in every state, with timelines and sessions."""
    settings = _settings()
    with _database(settings) as settings, _reachable():
        from .devtools import seed_load as load

        app = _app(settings)
        with app.app_context():
            counts = load(count, districts=districts, seed=seed)
    click.echo(json.dumps(counts, ensure_ascii=False))


@main.command("create-admin")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--display-name", default="管理员", show_default=True)
def create_admin(username, password, display_name):
    """Create an admin account (or fail if the username is taken)."""
    from .errors import DomainError
    from .users import service

    from .users.schemas import PASSWORD_MIN_LENGTH

    settings = _settings()
    if len(password) < PASSWORD_MIN_LENGTH:
        raise click.BadParameter(f"at least {PASSWORD_MIN_LENGTH} characters", param_hint="--password")
    with _database(settings) as settings, _reachable():
        app = _app(settings)
        with app.app_context():
            try:
                user = service.create_staff(username=username, password=password,
                                            display_name=display_name, roles=["admin"])
            except DomainError as exc:
                raise click.ClickException(f"{exc.message} ({exc.error}) {exc.errors or ''}") from None
    click.echo(f"admin {username} created (id {user.id})")


@main.command()
@click.option("--region", required=True, help="region code; its whole subtree is counted")
@click.option("--from", "date_from", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="first creation date (YYYY-MM-DD, inclusive; default 1 January)")
@click.option("--to", "date_to", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="last creation date (YYYY-MM-DD, inclusive; default today)")
@click.option("--group-by", type=click.Choice(["township", "studio", "category", "month"]),
              help="rows per township, studio, category or month (default: township for a district, else studio)")
@click.option("--rank", type=click.Choice(["response_rate", "meeting_rate", "closure_rate", "satisfaction_rate"]),
              help="order rows by this rate; groups with too few issues are left out and named")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
def stats(region, date_from, date_to, group_by, rank, output_format):
    """Print the response, meeting, closure and satisfaction rates of a region (as GET /stats/overview)."""
    from .stats import cli as stats_cli

    stats_cli.check_region(region)  # before starting any database
    settings = _settings()
    with _database(settings) as settings, _reachable():
        app = _app(settings)
        with app.app_context():
            click.echo(stats_cli.report(region, date_from and date_from.date(), date_to and date_to.date(),
                                        group_by, rank, output_format), nl=output_format != "csv")


@main.command("export-openapi")
@click.option("--output", default=str(SPEC_PATH), show_default=True, type=click.Path(dir_okay=False))
def export_openapi(output):
    """Write the OpenAPI contract to schemas/openapi.json (no database needed)."""
    click.echo(f"wrote {write_spec(output)}")


def spec_json(app) -> str:
    return json.dumps(app.extensions["yishitang.api"].spec.to_dict(),
                      ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_spec(output=SPEC_PATH) -> Path:
    settings = _settings(testing=True, mongodb_uri=os.environ.get("MONGODB_URI") or "mongodb://127.0.0.1:9/",
                         mongodb_timeout_ms=50)
    logging.getLogger("yishitang").setLevel(logging.ERROR)
    app = _app(settings)
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec_json(app), encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
