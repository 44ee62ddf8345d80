"""Django settings. Everything a deployment changes comes from the environment (see docs/operations.md)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from bihuan.env import (
    BASE_DIR,
    DEMO_DATA_KEY,
    DEMO_SECRET_KEY,
    ConfigError,
    env_bool,
    env_int,
    env_list,
    env_str,
    parse_database_url,
    require_production_keys,
)

# BIHUAN_DEMO=1 (set by `make demo` and the tests) allows the published development keys (bihuan.env).
# Without it, both keys must come from the environment, and be real: a production start with a missing, published,
# malformed or weak key fails, naming the variable.
DEMO = env_bool("BIHUAN_DEMO", False)

SECRET_KEY = env_str("BIHUAN_SECRET_KEY", DEMO_SECRET_KEY if DEMO else None)
# The data key (base64, 32 random bytes) encrypts ID numbers and phones. Older keys stay readable through
# BIHUAN_DATA_KEYS_OLD during a rotation (docs/operations.md).
DATA_KEY = env_str("BIHUAN_DATA_KEY", DEMO_DATA_KEY if DEMO else None)
DATA_KEYS_OLD = env_list("BIHUAN_DATA_KEYS_OLD", [])
LOOKUP_KEY = env_str("BIHUAN_LOOKUP_KEY", "")
if not DEMO:
    require_production_keys(SECRET_KEY, DATA_KEY, DATA_KEYS_OLD)

DEBUG = env_bool("BIHUAN_DEBUG", DEMO)
ALLOWED_HOSTS = env_list("BIHUAN_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("BIHUAN_CSRF_TRUSTED_ORIGINS", [])

DATABASES = {"default": parse_database_url(env_str("DATABASE_URL", "sqlite:///var/bihuan.sqlite3"))}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Lets core.prepared prepare its statements (the ORM binds on the client and never prepares). Off for a
    # pooler in transaction mode that cannot keep prepared statements.
    # Behind a pooler in transaction mode (BIHUAN_DB_PREPARE=false) server-side cursors (.iterator()) go too:
    # neither a prepared statement nor a named cursor outlives the transaction's server connection.
    DB_PREPARE = env_bool("BIHUAN_DB_PREPARE", True)
    DATABASES["default"]["OPTIONS"] = {"prepare_threshold": 5 if DB_PREPARE else None}
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = not DB_PREPARE

# SQLite: the worker refreshes the planner's statistics (a sampled ANALYZE) this often (bihuan/core/statistics.py)
SQLITE_ANALYZE_MINUTES = env_int("BIHUAN_SQLITE_ANALYZE_MINUTES", 60, minimum=1)

# A streaming replica (hot standby) for rollups, dashboards, reports and exports (bihuan/core/dbroute.py).
REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
REPLICA_PIN_SECONDS = env_int("BIHUAN_REPLICA_PIN_SECONDS", 10, minimum=1)  # read-your-writes after a write
REPLICA_MAX_LAG_SECONDS = env_int("BIHUAN_REPLICA_MAX_LAG_SECONDS", 10, minimum=1)  # further behind: skipped
REPLICA_CHECK_SECONDS = env_int("BIHUAN_REPLICA_CHECK_SECONDS", 2, minimum=0)  # health checked this often
if REPLICA_URL:
    DATABASES["replica"] = parse_database_url(REPLICA_URL)
    if not all(DATABASES[alias]["ENGINE"].endswith("postgresql") for alias in ("default", "replica")):
        raise ConfigError("DATABASE_REPLICA_URL must be a postgres:// URL, a streaming replica of DATABASE_URL's "
                          "PostgreSQL")
    DATABASES["replica"]["OPTIONS"] = dict(DATABASES["default"].get("OPTIONS", {}), connect_timeout=2)
    DATABASES["replica"]["DISABLE_SERVER_SIDE_CURSORS"] = DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS",
                                                                                   False)
    # Tests: the replica is the test database itself (a standby cannot create one; the replica's own tests point
    # the alias at the real standby, which replicates the test database the primary made).
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["bihuan.core.dbroute.Router"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "bihuan.core",
    "bihuan.register",
    "bihuan.notify",
    "bihuan.loops",
    "bihuan.directives",
    "bihuan.policy",
    "bihuan.pushes",
    "bihuan.control",
    "bihuan.inspections",
    "bihuan.checkpoints",
    "bihuan.forces",
    "bihuan.today",
    "bihuan.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below)
    "csp.middleware.CSPMiddleware",
    # request bodies above the limit of their kind refused before they are read
    "bihuan.core.uploads.UploadLimitMiddleware",
    # NUL characters in the path, query, form or JSON body refused (400)
    "bihuan.core.http.StrictInputMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # pages without login (resident links, self-report, sign-up): limited per client address and per link
    "bihuan.core.ratelimit.PublicRateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # idle timeout (shorter for levels 1-2) and "log out everywhere"
    "bihuan.login.SessionGuardMiddleware",
    # the second factor: a code after the password for enrolled accounts; enrolment for roles that need it
    "bihuan.second_factor.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # staff: a first password must be changed first; the person's own language
    "bihuan.register.middleware.StaffMiddleware",
]
if REPLICA_URL:
    MIDDLEWARE.insert(1, "bihuan.core.dbroute.PinAfterWrite")  # read-your-writes with a replica

ROOT_URLCONF = "bihuan.urls"
WSGI_APPLICATION = "bihuan.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "bihuan" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "bihuan.register.context.staff",
            ],
        },
    },
]

# Staff passwords: 10+ characters, not common, not like the username or name, not the phone, not a product or
# place word with digits (bihuan2022), not a short pattern repeated (grid1grid1). See bihuan/core/passwords.py.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ("username", "first_name", "last_name", "email")}},
    {"NAME": "bihuan.core.passwords.NotGuessableValidator"},
]

# Sign-in throttling and sessions (bihuan/core/login.py).
LOGIN_MAX_FAILURES = env_int("BIHUAN_LOGIN_MAX_FAILURES", 5, minimum=1)  # per account, within the window
LOGIN_ADDRESS_MAX_FAILURES = env_int("BIHUAN_LOGIN_ADDRESS_MAX_FAILURES", 30, minimum=1)  # per client address
LOGIN_WINDOW_MINUTES = env_int("BIHUAN_LOGIN_WINDOW_MINUTES", 15, minimum=1)
LOGIN_LOCK_MINUTES = env_int("BIHUAN_LOGIN_LOCK_MINUTES", 15, minimum=1)  # the cool-off
SESSION_IDLE_MINUTES = env_int("BIHUAN_SESSION_IDLE_MINUTES", 60, minimum=2)
SESSION_IDLE_MINUTES_HIGH = env_int("BIHUAN_SESSION_IDLE_MINUTES_HIGH", 20, minimum=2)  # staff of levels 1-2
SESSION_COOKIE_AGE = env_int("BIHUAN_SESSION_HOURS", 12, minimum=1) * 3600  # at most one working day
# Reveals of full personal values per user and window (bihuan/core/reveal.py).
REVEAL_LIMIT = env_int("BIHUAN_REVEAL_LIMIT", 20, minimum=1)
REVEAL_WINDOW_MINUTES = env_int("BIHUAN_REVEAL_WINDOW_MINUTES", 10, minimum=1)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Simplified Chinese first, English second.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "bihuan" / "locale"]
USE_I18N = True
TIME_ZONE = env_str("BIHUAN_TIME_ZONE", "Asia/Shanghai")
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it; collectstatic fills it in production
STATICFILES_DIRS = [BASE_DIR / "bihuan" / "static"]
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = BASE_DIR / "var" / "media"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("BIHUAN_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BIHUAN_BEHIND_PROXY", False) else None
# Served over HTTPS (BIHUAN_SECURE_COOKIES=1): plain-HTTP requests are redirected, and browsers are told to use HTTPS
# only (HSTS, a year, subdomains included, no preload list unless asked). Each can be tuned on its own; turning
# subdomains or preload off is a deliberate choice, so its deploy-check warning is silenced with it.
SECURE_SSL_REDIRECT = env_bool("BIHUAN_SSL_REDIRECT", SESSION_COOKIE_SECURE)
SECURE_REDIRECT_EXEMPT = [r"^" + p.lstrip("/") for p in env_list("BIHUAN_SSL_REDIRECT_EXEMPT", [])]
SECURE_HSTS_SECONDS = env_int("BIHUAN_HSTS_SECONDS", 365 * 24 * 3600 if SESSION_COOKIE_SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("BIHUAN_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("BIHUAN_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = (["security.W005"] if not SECURE_HSTS_INCLUDE_SUBDOMAINS else []) + \
    (["security.W021"] if not SECURE_HSTS_PRELOAD else [])

# The second factor (TOTP): enrolment is required for roles that reveal or export personal data or manage accounts
# when enforced — by default outside demo mode (the demo's published accounts would otherwise all need phones).
TOTP_ENFORCE = env_bool("BIHUAN_TOTP_ENFORCE", not DEMO)

# API tokens: how long a new one lasts (BIHUAN_API_TOKEN_DAYS), and the longest a user may choose.
API_TOKEN_DAYS = env_int("BIHUAN_API_TOKEN_DAYS", 90, minimum=1)
API_TOKEN_MAX_DAYS = env_int("BIHUAN_API_TOKEN_MAX_DAYS", 366, minimum=1)

# Content-Security-Policy (django-csp): everything from this site only; no inline script or style anywhere (scripts
# and styles are static files; sizes set from data-* attributes by js/page.js); no plug-ins, no framing, forms post
# only here. BIHUAN_CSP_REPORT_URI sends violation reports to a collector of the deployment's choice.
_CSP_REPORT_URI = env_str("BIHUAN_CSP_REPORT_URI", "")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        **({"report-uri": [_CSP_REPORT_URI]} if _CSP_REPORT_URI else {}),
    },
}

# Pages anyone may open without an account, rate limited per client address and per link (bihuan/core/ratelimit.py).
# Generous per address: a village may share one mobile-network address.
PUBLIC_PREFIXES = ("/r/", "/p/", "/s/", "/f/", "/report/")
# the same page for many people (the self-report form, a unit's sign-up poster): counted per address only
PUBLIC_SHARED_PATHS = ("/report/",)
PUBLIC_SHARED_PREFIXES = ("/f/join/",)
PUBLIC_RATE_WINDOW_SECONDS = env_int("BIHUAN_PUBLIC_RATE_WINDOW_SECONDS", 600, minimum=10)
PUBLIC_RATE_PER_ADDRESS = env_int("BIHUAN_PUBLIC_RATE_PER_ADDRESS", 300, minimum=1)
PUBLIC_RATE_PER_LINK = env_int("BIHUAN_PUBLIC_RATE_PER_LINK", 60, minimum=1)

# CAP 1.2 sender ids are this prefix plus the unit code (docs/api.md).
CAP_SENDER_PREFIX = env_str("BIHUAN_CAP_SENDER_PREFIX", "bihuan:")

# Pushed lists: verify within "24h" (or "<n>h", or "same_day"); the receiving unit signs a transfer within N hours.
PUSH_VERIFY_DEADLINE = env_str("BIHUAN_PUSH_VERIFY_DEADLINE", "24h")
PUSH_TRANSFER_SIGN_HOURS = env_int("BIHUAN_PUSH_TRANSFER_SIGN_HOURS", 2, minimum=1)

# The address residents reach the system at, for links sent by SMS (e.g. https://bihuan.example.gov.cn).
PUBLIC_URL = env_str("BIHUAN_PUBLIC_URL", "http://127.0.0.1:8000" if DEMO else "").rstrip("/")

DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
# Uploads: the largest request body per path prefix, checked before the body is read (bihuan/core/uploads.py);
# files above 2.5 MB go to a temporary file, not memory. Everything else (forms, JSON) is small.
UPLOAD_LIMITS = {
    "/pushes/upload/": env_int("BIHUAN_UPLOAD_PUSH_MB", 50, minimum=1) * 1024 * 1024,
    "/api/v1/pushes/": env_int("BIHUAN_UPLOAD_PUSH_MB", 50, minimum=1) * 1024 * 1024,
    "/import/": env_int("BIHUAN_UPLOAD_REGISTER_MB", 50, minimum=1) * 1024 * 1024,
    "/pushes/policy/": 10 * 1024 * 1024,
}
UPLOAD_DEFAULT_LIMIT = 2 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("BIHUAN_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
