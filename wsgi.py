"""A plain WSGI entry point (`gunicorn wsgi:app`, or any WSGI server). `leadgate serve`, what `make run`
starts, serves the same app behind api/front.py, which reads each request whole under a deadline."""

from api import create_app

app = create_app()
