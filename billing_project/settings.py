"""Settings, read from the environment with django-environ.

With no environment at all the app runs on the embedded default (SQLite, in-memory channel layer,
local-memory cache, no Stripe) so one command starts it. Production sets DATABASE_URL, REDIS_URL,
SECRET_KEY, DEBUG=false, ALLOWED_HOSTS and the Stripe keys.
"""

import re
import warnings
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
# The fallback key only exists so a fresh clone runs; `check --deploy` rejects it in production.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-local-development-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    # The admin with the back office site (title, dashboard): see billing_project/admin_site.py.
    "billing_project.apps.BillingAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # Swagger UI and Redoc as pinned static files of our own (SPECTACULAR_SETTINGS "SIDECAR"), no CDN.
    "drf_spectacular_sidecar",
    "channels",
    # Module registry, state and doors (docs/modules.md); below every app, so each may declare modules.
    "modules",
    # The job engine (docs/jobs.md): jobs are rows of the PostgreSQL database, enqueued by the
    # transaction that causes them; its admin lists jobs read-only.
    "procrastinate.contrib.django",
    "notifications",
    "outbound_webhooks",
    "subscriptions",
    "credits",
    "usage",
    "payments",
    # The Stripe rail's own app: its webhook inbox in the admin and the `stripe_events` command.
    "payments.providers.stripe.apps.StripeRailConfig",
    # The PayPal rail's own app, likewise: its webhook inbox in the admin and the `paypal_events` command.
    "payments.providers.paypal.apps.PayPalRailConfig",
    # The Lemon Squeezy rail's own app (merchant of record): its webhook inbox and `lemonsqueezy_events`.
    "payments.providers.lemonsqueezy.apps.LemonSqueezyRailConfig",
    # Finance reports (reads only), layered above payments: reports/.
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin, API docs) served by the app itself under daphne and gunicorn, DEBUG or not.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # 413 for oversized bodies, 400 for NUL / unpaired surrogates in the path, query or headers.
    "core.middleware.RequestGuardMiddleware",
    # A disabled module's API routes answer 404 `module_disabled`, its admin pages 404 (docs/modules.md).
    "modules.middleware.ModuleDoorsMiddleware",
    # A customer's credit debit in its common case, answered here with the view's own parts; it knows what the
    # middleware below does for such a request and refuses to start if that list changes (credits/api/lean.py).
    "credits.api.lean.CreditDebitLeanMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The reader's language: the language cookie staff set with the admin's switcher, else Accept-Language,
    # else LANGUAGE_CODE. API callers' preferred language is applied after authentication (docs/i18n.md).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "billing_project.urls"
# HTTP-only workers (gunicorn) for API throughput; ASGI (daphne) serves HTTP and WebSockets together.
WSGI_APPLICATION = "billing_project.wsgi.application"
ASGI_APPLICATION = "billing_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # LANGUAGE_CODE and LANGUAGE_BIDI for <html lang dir> in every page we render.
                "django.template.context_processors.i18n",
            ],
            # {% load billing_l10n %}: the money and date filters every template formats figures with.
            "libraries": {"billing_l10n": "core.templatetags.billing_l10n"},
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# On PostgreSQL each process borrows connections from a psycopg pool of at most DATABASE_POOL_MAX_SIZE
# and returns them at the end of every request. Persistent per-thread connections (CONN_MAX_AGE) would
# leak one connection per request thread under daphne, which runs each request in a thread of its own.
# DATABASE_POOL_MAX_SIZE=0 turns the pool off (then CONN_MAX_AGE applies); SQLite never pools.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=10)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_MAX_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(env.int("DATABASE_POOL_MIN_SIZE", default=1), DATABASE_POOL_MAX_SIZE),
        "max_size": DATABASE_POOL_MAX_SIZE,
        # A request waits this long for a free connection, then answers 503 (core/server_errors.py).
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=30.0),
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
# PostgreSQL's JIT compiles any statement whose estimated cost passes jit_above_cost, and the estimate of
# an index-probing batch query (the billing run's, the rollups') easily does: it spent 1.2 s compiling a
# 60 ms statement. Billing statements are short and many; JIT stays off unless DATABASE_JIT turns it on.
DATABASE_JIT = env.bool("DATABASE_JIT", default=False)
# Memory each sort or hash of a statement may use before spilling to disk. PostgreSQL's 4MB default made the
# forecast report's grouping of 100,000 subscriptions sort on disk (500 ms) where a hash in memory takes half;
# at DATABASE_POOL_MAX_SIZE connections per process this stays small beside the server's memory.
DATABASE_WORK_MEM = env.str("DATABASE_WORK_MEM", default="16MB")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "options", " ".join([f"-c work_mem={DATABASE_WORK_MEM}", *([] if DATABASE_JIT else ["-c jit=off"])]))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Procrastinate's tables exist on PostgreSQL only; on SQLite jobs run in process (core/jobs.py).
DATABASE_ROUTERS = ["core.jobs.JobsDatabaseRouter"]

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub: one PUBLISH per group_send, and each process hands a message to its local
            # consumers from one reader. The list-based RedisChannelLayer spent twice the CPU per
            # delivered event in bench/ws_fanout.py (docs/websocket.md). It is channels-redis's
            # RedisPubSubChannelLayer plus one pipeline per batch for the live-event sender
            # (modules/live_layer.py).
            "BACKEND": "modules.live_layer.PipelinedPubSubChannelLayer",
            # A bounded connect timeout: an unreachable Redis delays a broadcast by seconds, not minutes.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_connect_timeout": 2}],
                       # Redis pub/sub channels ignore the database number: deployments sharing one Redis
                       # keep their live events apart with a prefix of their own.
                       "prefix": env.str("CHANNEL_LAYER_PREFIX", default="asgi")},
        }
    }
    CACHES = {
        "default": {
            # Django's Redis cache that falls back to per-process local memory while Redis is unreachable
            # (core/resilience.py): Redis down costs shared counters, never a request.
            "BACKEND": "core.resilience.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            # As for the channel layer: deployments sharing one Redis database keep their keys apart.
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default=""),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# After Redis failed, seconds between attempts to reach it again; meanwhile the cache is local memory
# and live broadcasts are dropped without trying (core/resilience.py).
REDIS_RETRY_SECONDS = env.float("REDIS_RETRY_SECONDS", default=10.0)
# Live events wait on one bounded queue per process for its sender thread (modules/topics_sender.py): when
# the channel layer cannot keep up, new events beyond this many are dropped (counted and logged), never the
# request that made the change. At exit the process waits up to this long for the queue to drain.
LIVE_SENDER_QUEUE_SIZE = env.int("LIVE_SENDER_QUEUE_SIZE", default=10_000)
LIVE_SENDER_EXIT_FLUSH_SECONDS = env.float("LIVE_SENDER_EXIT_FLUSH_SECONDS", default=5.0)
# An event that finds the sender's queue empty waits this long for others to share its pipeline: about a
# fifth less of the sender's CPU per event at 300-400 events/s, for a few ms of latency (docs/decisions.md).
LIVE_SENDER_LINGER_SECONDS = env.float("LIVE_SENDER_LINGER_SECONDS", default=0.003)

# Seconds each process trusts its memo of which modules are enabled; a switch made in another process is
# seen within this (the process that made it sees it at once).
MODULES_STATE_CACHE_SECONDS = env.float("MODULES_STATE_CACHE_SECONDS", default=2.0)
# Seconds /healthz waits for the modules' checks; one that has not answered by then is reported down.
MODULES_HEALTH_TIMEOUT = env.float("MODULES_HEALTH_TIMEOUT", default=3.0)

# Seconds a WebSocket may stay open without authenticating (first-message token) before it is closed.
WEBSOCKET_AUTH_TIMEOUT = env.int("WEBSOCKET_AUTH_TIMEOUT", default=10)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# English and Arabic (docs/i18n.md): the catalogs live in locale/, Django's and DRF's own ship with them.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ar", "العربية")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The admin's language switcher remembers a staff member's choice in this cookie for a year.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
# The CLDR locale (region) that formats amounts and dates for each language (core/l10n.py): Yemen's
# Arabic writes Arabic-Indic digits, as CLDR says; `ar_AE` or `ar` would write Latin digits.
FORMAT_LOCALES = {"en": env.str("FORMAT_LOCALE_EN", default="en_US"),
                  "ar": env.str("FORMAT_LOCALE_AR", default="ar_YE")}
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise also serves straight from the apps' static folders, so a deployment that skipped
# `collectstatic` still has the admin's and the API docs' files (collected files are served first).
WHITENOISE_USE_FINDERS = True
# With the finders serving, a missing STATIC_ROOT (no `collectstatic` yet) is expected, not worth a warning
# at every process start.
warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)

# ISO 4217 code used for customers and plans created without an explicit currency.
DEFAULT_CURRENCY = env.str("DEFAULT_CURRENCY", default="USD").upper()

# Days between an invoice's finalization and its due date; 0 charges automatically on issue.
INVOICE_DAYS_UNTIL_DUE = env.int("INVOICE_DAYS_UNTIL_DUE", default=0)

STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Lets tests and local runs point the SDK at a loopback Stripe peer (localstripe); empty means Stripe.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")

# PayPal REST app credentials (docs/paypal.md); without both the PayPal rail answers 503 and the rest works.
PAYPAL_CLIENT_ID = env.str("PAYPAL_CLIENT_ID", default="")
PAYPAL_CLIENT_SECRET = env.str("PAYPAL_CLIENT_SECRET", default="")
# The id PayPal gave our /webhooks/paypal/ listener: part of every signed message, so it is required.
PAYPAL_WEBHOOK_ID = env.str("PAYPAL_WEBHOOK_ID", default="")
# Live by default; https://api-m.sandbox.paypal.com for the sandbox, a loopback peer in tests. Its host is
# also trusted for webhook signing certificates (besides paypal.com hosts).
PAYPAL_API_BASE = env.str("PAYPAL_API_BASE", default="https://api-m.paypal.com")
# Seconds one PayPal API call may take before it counts as a provider error (a billing-run worker must not
# hang on it).
PAYPAL_TIMEOUT = env.float("PAYPAL_TIMEOUT", default=30.0)

# Lemon Squeezy, the merchant of record (docs/lemonsqueezy.md): an API key of the store's owner, the store
# its checkouts are opened in, and the signing secret of the /webhooks/lemonsqueezy/ webhook (every
# delivery's X-Signature is its HMAC-SHA256 of the raw body, so deliveries are refused without it).
LEMONSQUEEZY_API_KEY = env.str("LEMONSQUEEZY_API_KEY", default="")
LEMONSQUEEZY_STORE_ID = env.str("LEMONSQUEEZY_STORE_ID", default="")
LEMONSQUEEZY_SIGNING_SECRET = env.str("LEMONSQUEEZY_SIGNING_SECRET", default="")
# The JSON:API's base; a loopback peer in tests.
LEMONSQUEEZY_API_BASE = env.str("LEMONSQUEEZY_API_BASE", default="https://api.lemonsqueezy.com/v1")
# Seconds one Lemon Squeezy call may take before it counts as a provider error.
LEMONSQUEEZY_TIMEOUT = env.float("LEMONSQUEEZY_TIMEOUT", default=30.0)

# The installed payment rails (docs/providers.md), in order of preference for hosted checkout and
# off-session charges. Stripe answers 503 until STRIPE_SECRET_KEY is set, PayPal until PAYPAL_CLIENT_ID and
# PAYPAL_CLIENT_SECRET are; manual methods always work.
PAYMENT_PROVIDERS = env.list("PAYMENT_PROVIDERS", default=["payments.providers.stripe.provider.StripeProvider",
                                                           "payments.providers.paypal.provider.PayPalProvider",
                                                           "payments.providers.lemonsqueezy.provider.LemonSqueezyProvider",
                                                           "payments.providers.manual.ManualProvider"])

# Stripe Checkout sends the customer's browser back to these after paying or giving up. A client may name
# its own success_url / cancel_url only on these hosts (an open redirect otherwise); the defaults are used
# when the request names none. See docs/api.md (Checkout).
CHECKOUT_REDIRECT_HOSTS = [h.lower() for h in env.list("CHECKOUT_REDIRECT_HOSTS", default=[])]
CHECKOUT_SUCCESS_URL = env.str("CHECKOUT_SUCCESS_URL", default="")
CHECKOUT_CANCEL_URL = env.str("CHECKOUT_CANCEL_URL", default="")
# Credit packs customers may buy through Checkout: code -> credits and a price per currency in minor
# units (a customer pays in its own currency, and JPY's 500 is not USD's 500). Env: JSON of the same shape.
CREDIT_PACKS = env.json("CREDIT_PACKS", default={
    "credits-100": {"credits": 100, "prices": {"USD": 500, "EUR": 500, "GBP": 450}},
    "credits-500": {"credits": 500, "prices": {"USD": 2000, "EUR": 2000, "GBP": 1800}},
    "credits-2000": {"credits": 2000, "prices": {"USD": 6000, "EUR": 6000, "GBP": 5400}},
})

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's token authentication with the token's holder kept in the cache (subscriptions/api/tokens.py).
        "subscriptions.api.tokens.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "core.api.filters.ApiFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.ApiAutoSchema",
    # DRF's parsers, refusing NUL, unpaired surrogates, NaN and deep nesting (core/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.ApiJSONParser",
        "core.api.parsers.ApiFormParser",
        "core.api.parsers.ApiMultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.ApiCursorPagination",
    "DEFAULT_THROTTLE_CLASSES": ["subscriptions.api.throttling.PlanRateThrottle"],
    "EXCEPTION_HANDLER": "core.api.errors.api_exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Seconds the API keeps a user's customer id and plan limits in the cache (see subscriptions/api/client.py).
API_CLIENT_CACHE_SECONDS = env.int("API_CLIENT_CACHE_SECONDS", default=30)
# Seconds the cache may keep who holds an API token (subscriptions/api/tokens.py). Deleting a token or
# saving its user forgets it at once; this bounds writes that bypass the models and Redis outages. 0: no cache.
API_TOKEN_CACHE_SECONDS = env.int("API_TOKEN_CACHE_SECONDS", default=30)
# Each process also remembers the token holders and plan limits it read (subscriptions/api/callers.py) and asks
# the cache at most this often whether any changed: a revocation or plan change made in another process is seen
# within it (this process's own at once). 0: asked on every lookup, two cache round trips per request as before.
API_CALLERS_CHECK_SECONDS = env.float("API_CALLERS_CHECK_SECONDS", default=1.0)
# Seconds an API request with an Idempotency-Key holds its key before a retry may take over a claim that
# a crashed request left behind; longer than any request (a Stripe call may take ~100 s with retries).
API_IDEMPOTENCY_LEASE_SECONDS = env.int("API_IDEMPOTENCY_LEASE_SECONDS", default=300)
# A full usage batch (1,000 events with properties) is well under this; bigger bodies are refused.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

SPECTACULAR_SETTINGS = {
    "TITLE": "Billing back office API",
    "DESCRIPTION": "Plans, subscriptions, invoices, payments, credits and usage.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from our own static files; no validator badge fetched from validator.swagger.io.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.add_api_headers",
    ],
    "ENUM_NAME_OVERRIDES": {
        "SubscriptionStatusEnum": "subscriptions.models.SubscriptionStatus",
        "InvoiceStatusEnum": "payments.models.InvoiceStatus",
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "RefundStatusEnum": "payments.models.RefundStatus",
        "LedgerKindEnum": "credits.models.LedgerKind",
        "CreditSourceEnum": "credits.models.CreditSource",
        "PaymentMethodEnum": "payments.models.PaymentMethod",
        "BillingReasonEnum": "payments.models.BillingReason",
        "AggregationEnum": "usage.models.Aggregation",
        "ThresholdKindEnum": "usage.models.ThresholdKind",
        "InvoiceLineKindEnum": "payments.models.InvoiceLineKind",
    },
}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Procrastinate logs every job deferred and every periodic task at each start at INFO: too much next
    # to the worker's own lines (job started, ended, retried), which stay at INFO.
    "loggers": {"django.db.backends": {"level": "WARNING"},
                **{name: {"level": "WARNING"} for name in ("procrastinate.jobs", "procrastinate.periodic",
                                                           "procrastinate.blueprints")}},
}

# The billing run (`manage.py billing run`).
# Subscriptions, grants' customers or invoices claimed per transaction: bigger batches mean fewer
# round trips, smaller ones shorter locks.
BILLING_RUN_BATCH_SIZE = env.int("BILLING_RUN_BATCH_SIZE", default=2000)
# Days after the first failed collection at which it is retried; the failure after the last one marks
# the invoice uncollectible and cancels the subscription.
BILLING_DUNNING_RETRY_DAYS = [int(d) for d in env.list("BILLING_DUNNING_RETRY_DAYS", default=["1", "3", "5", "7"])]
# How long (from the run's as-of instant) an invoice the run is about to charge stays out of every
# other run's reach: the charge happens outside any transaction, so this lease, not a row lock, keeps
# concurrent runs off it; a run killed mid-charge leaves it leased and the first run after the lease
# retries the same attempt (same idempotency key, so Stripe charges once).
BILLING_COLLECTION_LEASE_SECONDS = env.int("BILLING_COLLECTION_LEASE_SECONDS", default=600)
# True: a trial of a paid plan whose customer saved no payment method is canceled when it ends (this
# business takes no manual payments for subscriptions); False: it converts and is invoiced anyway.
BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION = env.bool(
    "BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION", default=True)
# True: the billing run's batch transactions commit without waiting for the WAL flush (see
# payments.billing.common.batch_transaction_tune for why that is safe); False: every batch waits.
BILLING_RUN_ASYNC_COMMIT = env.bool("BILLING_RUN_ASYNC_COMMIT", default=True)

# Password guesses: sign-in attempts (API token and admin login, right or wrong) allowed per submitted
# username and per client address, as "N/second|minute|hour|day"; over either, 429 with Retry-After.
LOGIN_THROTTLE_USERNAME_RATE = env.str("LOGIN_THROTTLE_USERNAME_RATE", default="10/hour")
LOGIN_THROTTLE_IP_RATE = env.str("LOGIN_THROTTLE_IP_RATE", default="50/hour")
# Reverse proxies in front of the app whose X-Forwarded-For entry names the client; 0 trusts none
# (REMOTE_ADDR), since a client can write any X-Forwarded-For it likes.
LOGIN_THROTTLE_TRUSTED_PROXIES = env.int("LOGIN_THROTTLE_TRUSTED_PROXIES", default=0)
for _rate in (LOGIN_THROTTLE_USERNAME_RATE, LOGIN_THROTTLE_IP_RATE):
    if not re.fullmatch(r"[1-9][0-9]*/(second|minute|hour|day|sec|min|s|m|h|d)", _rate):
        raise ImproperlyConfigured(f"A login throttle rate is N/second, N/minute, N/hour or N/day, not {_rate!r}.")

# Background jobs (Procrastinate, docs/jobs.md). Every task retries failures with exponential backoff:
# JOBS_RETRY_BACKOFF_BASE_SECONDS ** (attempt + 1) seconds, up to JOBS_RETRY_MAX_ATTEMPTS retries.
JOBS_RETRY_MAX_ATTEMPTS = env.int("JOBS_RETRY_MAX_ATTEMPTS", default=8)
JOBS_RETRY_BACKOFF_BASE_SECONDS = env.int("JOBS_RETRY_BACKOFF_BASE_SECONDS", default=4)
# A job whose worker sent no heartbeat for this long (killed, machine lost) is put back in the queue.
JOBS_STALLED_AFTER_SECONDS = env.int("JOBS_STALLED_AFTER_SECONDS", default=60)
# Finished jobs are kept this long for the admin, then deleted by a periodic job.
JOBS_KEEP_HOURS = env.int("JOBS_KEEP_HOURS", default=72)
# Modules holding tasks outside the apps' tasks.py (autodiscovered): the engine's own upkeep.
PROCRASTINATE_IMPORT_PATHS = ["core.jobs_maintenance"]
# When the periodic billing run starts (cron, UTC) and into how many jobs it is split: each job runs
# `billing run`, and the SKIP LOCKED claims share the due work among the workers that pick them up.
BILLING_RUN_CRON = env.str("BILLING_RUN_CRON", default="0 * * * *")
BILLING_RUN_JOBS = env.int("BILLING_RUN_JOBS", default=2)
# Trial reminders: days before a trial ends that the customer is told, and when the check runs.
TRIAL_REMINDER_DAYS = env.int("TRIAL_REMINDER_DAYS", default=3)
TRIAL_REMINDER_CRON = env.str("TRIAL_REMINDER_CRON", default="15 * * * *")
IDEMPOTENCY_KEYS_PURGE_CRON = env.str("IDEMPOTENCY_KEYS_PURGE_CRON", default="30 3 * * *")
# A debit that takes a customer's credit balance from at or above this to below it sends "credits low".
CREDITS_LOW_THRESHOLD = env.int("CREDITS_LOW_THRESHOLD", default=100)

# Outbound webhooks (docs/webhooks-outbound.md). Private, loopback, link-local and other non-public
# addresses are refused unless allowed here (a receiver on the same network, the tests' loopback peer).
OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env.bool("OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=False)
OUTBOUND_WEBHOOKS_TIMEOUT_SECONDS = env.float("OUTBOUND_WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
# A failed delivery is retried after base x 2^(failures-1), at most the max delay, until the window closes.
OUTBOUND_WEBHOOKS_RETRY_BASE_DELAY = timedelta(seconds=env.int("OUTBOUND_WEBHOOKS_RETRY_BASE_SECONDS", default=30))
OUTBOUND_WEBHOOKS_RETRY_MAX_DELAY = timedelta(seconds=env.int("OUTBOUND_WEBHOOKS_RETRY_MAX_SECONDS", default=6 * 3600))
OUTBOUND_WEBHOOKS_RETRY_WINDOW = timedelta(hours=env.int("OUTBOUND_WEBHOOKS_RETRY_HOURS", default=72))
# An endpoint whose every attempt failed for this long is disabled and staff are emailed.
OUTBOUND_WEBHOOKS_DISABLE_AFTER = timedelta(hours=env.int("OUTBOUND_WEBHOOKS_DISABLE_AFTER_HOURS", default=72))

# Email (docs/emails.md). Console by default, so nothing leaves a development machine; EMAIL_URL
# (smtp+tls://user:password@host:587) switches to SMTP, EMAIL_BACKEND to any backend, e.g.
# anymail.backends.postmark.EmailBackend with its credentials in ANYMAIL (JSON).
_EMAIL_URL = env.str("EMAIL_URL", default="")
if _EMAIL_URL:
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
ANYMAIL = env.json("ANYMAIL", default={})
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@localhost")
# Absolute base of links in emails (the printable invoice): emails are rendered by a worker, with no request.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
