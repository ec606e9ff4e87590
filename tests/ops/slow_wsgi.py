"""Paydesk's WSGI application plus `/slow?seconds=N`: a request that keeps a gunicorn worker busy.

With `&then=<path>` the request is then served by Paydesk at that path (so it counts in the
worker's metrics); without, it answers `finished`.
"""

import time
from urllib.parse import parse_qs

from config.wsgi import application as paydesk


def application(environ, start_response):
    if environ.get("PATH_INFO") != "/slow":
        return paydesk(environ, start_response)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    time.sleep(float(query.get("seconds", ["1"])[0]))
    if "then" in query:
        return paydesk({**environ, "PATH_INFO": query["then"][0], "QUERY_STRING": ""}, start_response)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"finished"]
