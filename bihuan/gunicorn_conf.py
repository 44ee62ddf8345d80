"""Gunicorn settings: ``gunicorn -c python:bihuan.gunicorn_conf bihuan.wsgi`` (``bihuan demo`` uses it too).

The access log names the path without its query string and without the referrer: a search by a full phone or ID
number (``?q=…``), a signed link's parameters or a page's filters never reach a log file. The register's own
search forms send the query by POST, so it is not in the address bar or the browser's history either.
"""

# remote address, time, method, path (no query string), protocol, status, bytes, duration in ms, user agent
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
