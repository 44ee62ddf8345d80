"""Gunicorn settings: ``gunicorn -c python:bihuan.gunicorn_conf bihuan.wsgi`` (``bihuan demo`` uses it too).

The access log names the path without its query string and without the referrer: a search by a full phone or ID
number (``?q=…``), a signed link's parameters or a page's filters never reach a log file. The register's own
search forms send the query by POST, so it is not in the address bar or the browser's history either.

Workers: sync, ``2 × cores + 1`` unless ``WEB_CONCURRENCY`` (or ``-w``) says otherwise. A request is Python work
and database round trips; while one worker waits on the database or on SQLite's write lock, another runs, and a
slow page (a district rollup) holds one worker, not the whole server. Measured with ``python -m bench
district-hour`` (docs/operations.md): on two cores, 5 sync workers served the same morning with a third more
requests a second and a tenth of the median wait of 2.
"""

import multiprocessing
import os

# remote address, time, method, path (no query string), protocol, status, bytes, duration in ms, user agent
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'

workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * multiprocessing.cpu_count() + 1)
worker_class = "sync"
timeout = 60  # a request still running after a minute is stuck: the worker is replaced
graceful_timeout = 20
