"""Signing in to the review pages: an API key of review scope starts a session held on the server.

The cookie is Flask's signed session (HttpOnly, SameSite=Lax, Secure unless LEADGATE_SECURE_COOKIES=0,
path /review), signed with the key file's session secret, so every gunicorn worker reads it and a
restart keeps people signed in. It holds only a session id, never the key: on every request the
session is looked up (`audit.sessions`): signing out ends it on the server, an idle one
(LEADGATE_SESSION_IDLE_MINUTES) or one older than 8 hours ends, and a revoked key (or one without
review scope) is signed out at once. Rotating the secret (`leadgate keys rotate-secret session`)
ends every session.

CSRF: Flask-WTF's CSRFProtect, checked only for the review blueprint. The JSON API authenticates with
`Authorization: Bearer`, which a browser never adds on its own, so it is not exposed to CSRF; checking
it by default would make every new API blueprint fail until someone remembered to exempt it.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, current_app, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

from audit import StorageUnavailable, sessions
from audit.keys import authenticate

from .. import limits
from ..state import trail
from . import bp

SCOPE = "review"
SESSION_LIFETIME = timedelta(hours=8)
PUBLIC = {"review.sign_in", "review.sign_in_post"}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

csrf = CSRFProtect()


def _under_review(path: str) -> bool:
    return path == bp.url_prefix or path.startswith(bp.url_prefix + "/")


class ReviewSessions(SecureCookieSessionInterface):
    """Signed-cookie sessions for the review pages only; the JSON API stays stateless."""

    def open_session(self, app, request):
        if not _under_review(request.path):
            return None  # a null session: API requests never read the database for a secret
        try:
            app.secret_key = sessions.secret(trail())  # read each time: a rotation reaches every worker
        except StorageUnavailable:
            return None  # the guard below answers 503
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    config = app.extensions["leadgate.config"]
    app.config.update(
        SESSION_COOKIE_NAME="leadgate_review",
        SESSION_COOKIE_PATH=bp.url_prefix,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(config.SECURE_COOKIES),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by the review blueprint's guard, see the module doc
        WTF_CSRF_TIME_LIMIT=None,  # a form's token is good for as long as its signed session
    )
    app.session_interface = ReviewSessions()
    csrf.init_app(app)


def signed_in_key():
    """The key of this live session, if it still exists, is not revoked and may review."""
    session_id = session.get("sid")
    if not isinstance(session_id, str):
        return None
    idle = timedelta(minutes=current_app.extensions["leadgate.config"].SESSION_IDLE_MINUTES)
    key = sessions.current(trail(), session_id, idle, SESSION_LIFETIME)
    return key if key is not None and key.allows(SCOPE) else None


def _safe_next(target: str | None) -> str | None:
    """Only a path of these pages: never another site (an open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or not _under_review(parts.path):
        return None
    return target


@bp.before_request
def guard():
    if current_app.secret_key is None:
        raise StorageUnavailable("the audit database cannot be reached to check the session")
    csrf.protect()
    if request.endpoint in PUBLIC:
        return None
    key = signed_in_key()
    if key is None:
        session.pop("sid", None)
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("review.sign_in", next=target))
    g.review_key = key
    return None


@bp.after_request
def security_headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: on HTTPS, Flask-WTF checks that a form post came from this host.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"  # pages show leads; no shared or back-button copies
    return response


@bp.context_processor
def signed_in():
    return {"signed_in": g.get("review_key")}


@bp.get("/")
def home():
    return redirect(url_for("review.decisions"))


@bp.get("/sign-in")
def sign_in():
    return render_template(
        "review/sign_in.html",
        next=_safe_next(request.args.get("next")),
        signed_out="signed_out" in request.args,
    )


@bp.post("/sign-in")
def sign_in_post():
    text = request.form.get("key", "").strip()
    limits.sign_in(text, failed=False)  # 429 once LEADGATE_SIGN_IN_RATE failures a minute are used up
    key = authenticate(trail(), text)
    target = _safe_next(request.form.get("next"))
    if key is None or not key.allows(SCOPE):
        message = (
            "This key is unknown or revoked."
            if key is None
            else f"This key has scope {key.scope}; the review pages need a review or admin key."
        )
        limits.sign_in(text, failed=True)
        page = render_template("review/sign_in.html", next=target, error=message)
        return page, 401 if key is None else 403
    session.clear()  # a fresh session (and CSRF token) for whoever signs in
    session.permanent = True
    session["sid"] = sessions.start(trail(), key.id)
    return redirect(target or url_for("review.decisions"))


@bp.post("/sign-out")
def sign_out():
    if isinstance(session.get("sid"), str):
        sessions.end(trail(), session["sid"])  # a copy of the cookie is refused from now on
    session.clear()
    return redirect(url_for("review.sign_in", signed_out=1))
