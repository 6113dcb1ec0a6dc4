"""Lean settings for the broker commands: only the broker app, no admin stack.

The CLI is called many times a minute; the admin, auth and sessions apps cost import
time on every call and no broker command uses them. ``db init``, ``server``, ``manage.py``
and the tests use ``cafleet_project.settings`` (the full stack) instead. Both share the
database definition below.
"""

from broker.conf import key_anchor, safe_database_path
from broker.database import django_databases

DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING_CONFIG = None
INSTALLED_APPS = ["broker.apps.BrokerConfig"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

DATABASE_PATH = safe_database_path()  # SQLite only; a placeholder on PostgreSQL
# The admin's secret key lives in the directory of this path: beside a SQLite file, or in
# the default data directory when the database is PostgreSQL.
KEY_ANCHOR = key_anchor()

# One database, SQLite (the default) or PostgreSQL, chosen by CAFLEET_DATABASE_URL.
DATABASES = {"default": django_databases()}
