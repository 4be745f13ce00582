"""WSGI entry point: `gunicorn wsgi:app` (what `make run` starts through `leadgate serve`)."""

from api import create_app

app = create_app()
