"""Full settings: the broker plus the Django admin stack (server, db init, manage.py, tests)."""

from pathlib import Path

from broker import conf
from cafleet_project import secretkey
from cafleet_project.settings_lean import DATABASE_PATH, DATABASES, KEY_ANCHOR  # noqa: F401

BASE_DIR = Path(__file__).resolve().parent.parent


def _secret_key() -> str:
    """``CAFLEET_SECRET_KEY``, else the key stored beside the database (when it is ours and
    private), else a key for this process only.

    Loading the settings never writes a file: ``db init`` and ``cafleet server`` create the
    key file once their checks pass (``cafleet_project.secretkey.ensure``).
    """
    env_key = conf.secret_key()
    if env_key:
        return env_key
    return secretkey.load(KEY_ANCHOR)


SECRET_KEY = _secret_key()
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
LOGGING_CONFIG = "logging.config.dictConfig"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_extensions",
    "broker.apps.BrokerConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "broker.middleware.ViewerTimezoneMiddleware",
]

ROOT_URLCONF = "cafleet_project.urls"
WSGI_APPLICATION = "cafleet_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

STATIC_URL = "/static/"
# Admin CSS/JS are served straight from the installed apps by WhiteNoise (no collectstatic).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

LOGIN_URL = "/admin/login/"
# Own cookie names: another local Django app on a different port shares 127.0.0.1's cookies.
SESSION_COOKIE_NAME = "cafleet_sessionid"
CSRF_COOKIE_NAME = "cafleet_csrftoken"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
