"""The demo and benchmark district generator (``bihuan generate``, ``bihuan demo``, ``bench/``): not part of the
running system, which never imports it."""

PASSWORD = "bihuan2022"  # every generated account's password (demo mode only: it must be changed elsewhere)
