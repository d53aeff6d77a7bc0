"""议事堂 Yishitang: backend of a WeChat mini-program for grassroots consultation."""

from __future__ import annotations

import logging

from flask import Flask

from .config import ConfigError, Settings

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """config -> db -> api -> blueprints -> errors; the database is dialled lazily."""
    from . import api, auth, db, errors, jsonbody, metrics, personal_data
    from .issues import access as issue_access
    from .users import tokens
    from .wechat import WeChatClient

    settings = settings or Settings.from_env()
    if not settings.mongodb_uri:
        raise ConfigError("MONGODB_URI is not set (`yishitang serve` starts the embedded database itself)")
    settings.check_app()
    app = _flask_app(settings)
    db.connect(settings)
    metrics.init_app(app)  # first: its after_request runs last and sees the final status
    smorest = app.extensions["yishitang.api"] = api.init_app(app)
    errors.register(app)
    app.before_request(jsonbody.check_request_body)  # before any view parses a body
    # Lower layers learn what they need from higher ones by registration, never by importing them.
    auth.set_user_loader(tokens.load_user)
    issue_access.init_app()
    personal_data.init_app()
    app.extensions["wechat"] = WeChatClient(settings)
    _register_blueprints(app, smorest)

    try:
        db.ensure_indexes()
    except errors.DATABASE_ERRORS as exc:
        # Start anyway: /readyz reports false and creates the indexes once the database answers.
        log.warning("database unreachable at start, indexes pending: %s", exc)
        app.extensions["indexes_pending"] = True
    return app


def _flask_app(settings: Settings) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        TESTING=settings.testing,
        API_TITLE="议事堂 Yishitang API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        # Room for a 10 MB file plus the multipart envelope; the files feature enforces 10 MB itself.
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES + 512 * 1024,
    )
    if settings.proxy_count:  # believe X-Forwarded-* from exactly that many proxies (client IP for rate limits)
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count,
                                x_host=settings.proxy_count)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    return app


def _register_blueprints(app: Flask, smorest) -> None:
    """The API's blueprints into the OpenAPI spec; ops, Open311 and the dashboard beside it."""
    from .consultations.routes import blp as consultations_blp
    from .feed.routes import blp as feed_blp
    from .files.routes import blp as files_blp
    from .issues.routes import blp as issues_blp
    from .meta.routes import blp as meta_blp
    from .notifications.routes import blp as notifications_blp
    from .open311.routes import blp as open311_blp
    from .open311.routes import integrations_blp
    from .ops.routes import blp as ops_blp
    from .regions.routes import blp as regions_blp
    from .stats.dashboard import blp as dashboard_blp
    from .stats.routes import blp as stats_blp
    from .studios.routes import blp as studios_blp
    from .users.routes import auth_blp, me_blp, users_blp
    from .wechatpush.routes import blp as wechatpush_blp

    for blueprint in (regions_blp, studios_blp, auth_blp, me_blp, users_blp, files_blp, issues_blp,
                      consultations_blp, notifications_blp, stats_blp, integrations_blp, meta_blp,
                      wechatpush_blp, feed_blp):
        smorest.register_blueprint(blueprint)
    app.register_blueprint(ops_blp)
    app.register_blueprint(open311_blp)  # GeoReport v2: its own formats and error shape, outside the OpenAPI spec
    app.register_blueprint(dashboard_blp)
