"""Lean settings for the broker commands: only the broker app, no admin stack.

The CLI is called many times a minute; the admin, auth and sessions apps cost import
time on every call and no broker command uses them. ``db init``, ``server``, ``manage.py``
and the tests use ``cafleet_project.settings`` (the full stack) instead. Both share the
database definition below.
"""

from broker.conf import safe_database_path

DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING_CONFIG = None
INSTALLED_APPS = ["broker.apps.BrokerConfig"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

DATABASE_PATH = safe_database_path()

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATABASE_PATH,
        # data-model.md §1: busy timeout 5000 ms, writes BEGIN IMMEDIATE. Django turns
        # foreign_keys on for every SQLite connection.
        "OPTIONS": {"timeout": 5, "transaction_mode": "IMMEDIATE"},
    }
}
