"""core.errors.disk_full: a full disk is recognised however it is reported."""

import errno
import sqlite3

import psycopg
from django.db import OperationalError

from bihuan.core.errors import disk_full


def test_a_full_disk_is_recognised_from_postgresql_sqlite_and_the_system():
    assert disk_full(psycopg.errors.DiskFull("could not extend file"))
    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk_full(sqlite3.OperationalError("database or disk is full"))
    try:  # as Django reports it: its own class, the driver's error as the cause
        try:
            raise psycopg.errors.DiskFull("could not extend file")
        except psycopg.Error as exc:
            raise OperationalError(str(exc)) from exc
    except OperationalError as wrapped:
        assert disk_full(wrapped)


def test_other_errors_are_not_a_full_disk():
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(psycopg.errors.UniqueViolation("duplicate key"))
    assert not disk_full(ValueError("bad"))
    assert not disk_full(None)
