"""WSGI entry point for gunicorn: `gunicorn wsgi:app` (MONGODB_URI and JWT_SECRET must be set)."""

from yishitang import create_app

app = create_app()
