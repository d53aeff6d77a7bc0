"""Operations: liveness, readiness, Prometheus metrics and the docs' static assets."""

import time

from flask import Blueprint, current_app, jsonify, send_from_directory

from .. import config
from .. import db

blp = Blueprint("ops", __name__)
STARTED = time.time()


@blp.get("/healthz")
def healthz():
    """The process is up (no database call)."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz():
    """The database answers; creates indexes left pending by a start without a database."""
    if not db.ping():
        response = jsonify(status="unavailable", database=False)
        response.status_code = 503
        response.headers["Retry-After"] = str(config.settings().retry_after_s)
        return response
    if current_app.extensions.get("indexes_pending"):
        db.ensure_indexes()
        current_app.extensions["indexes_pending"] = False
    return jsonify(status="ok", database=True)


@blp.get("/docs/assets/<path:filename>")
def docs_assets(filename):
    """Swagger UI files shipped with the app: the docs page needs no CDN."""
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(swagger_ui_path, filename, max_age=86400)
