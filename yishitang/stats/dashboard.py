"""GET /dashboard: the coordinators' web page (HTML, JS and CSS from this package; no CDN).

The page signs in with the staff password login and calls the JSON API with the bearer token;
it holds no data of its own, so it is served to anyone, with headers that keep it from being
framed, leaking its address or running any script but its own files.
"""

from flask import Blueprint, render_template

blp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
                static_url_path="/dashboard/static")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@blp.get("/dashboard")
def dashboard():
    """The page itself; everything it shows comes from the API after sign-in."""
    return render_template("dashboard.html")


@blp.after_request
def secure(response):
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response
