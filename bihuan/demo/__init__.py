"""The demo and benchmark district generator (``bihuan generate``, ``bihuan demo``, ``bench/``): not part of the
running system, which never imports it."""
