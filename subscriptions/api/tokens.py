"""API token authentication without a query per request: who holds a token, kept in the cache.

DRF's TokenAuthentication reads the token and its user on every request (a fifth of a credit debit's
CPU over HTTP). Here the user's row is kept in Django's cache (Redis in production, shared by every
process) under a digest of the key, for at most API_TOKEN_CACHE_SECONDS:
- the raw key is never a cache key and the password hash is never cached (the field is left deferred:
  reading it loads it from the database), so reading Redis gives away neither;
- revoking is immediate in the shared cache: deleting a token, and saving or deleting its user (deactivated,
  made or unmade staff, password changed), forget the entry at once and again after the commit (a request
  in another process that read the old row before the commit cannot leave it behind); each process also
  keeps the holders it read (subscriptions/api/callers.py) and forgets them all at its next version check,
  within API_CALLERS_CHECK_SECONDS (1 s; 0: at once, for a version read per lookup). These are receivers of
  Django's model signals because Token and User are not our models to give a `save()` of our own; they
  only forget cache entries, no domain flow;
- writes that bypass the models (`QuerySet.update`, raw SQL) and changes made while Redis is down (each
  process then caches in its own memory) are seen within API_TOKEN_CACHE_SECONDS, the documented bound.
Permissions and groups are not cached: a staff user's `has_perms` reads them per request as before.
"""

import hashlib
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from subscriptions.api.callers import caller_remember, caller_remembered, callers_changed

# Never cached: the password hash (see the module's docstring).
UNCACHED_USER_FIELDS = frozenset({"password"})


def _cache_key(key: str) -> str:
    return f"api-token:{hashlib.sha256(key.encode()).hexdigest()}"


def _user_fields(user) -> dict:
    return {f.attname: getattr(user, f.attname) for f in user._meta.concrete_fields
            if f.attname not in UNCACHED_USER_FIELDS}


def _user_from_fields(fields: dict):
    model = get_user_model()
    return model.from_db("default", list(fields), list(fields.values()))


def api_token_user(*, key: str):
    """The user holding API token `key` (active or not), or None: from this process's memo, else the
    cache, else one query (subscriptions/api/callers.py)."""
    seconds = settings.API_TOKEN_CACHE_SECONDS
    if seconds <= 0:
        token = Token.objects.select_related("user").filter(key=key).first()
        return token.user if token is not None else None
    cache_key = _cache_key(key)
    fields = caller_remembered(cache_key)
    if fields is not None:
        return _user_from_fields(fields)
    cached = cache.get(cache_key)
    # (deadline, fields): the deadline goes with the entry so no process keeps it longer than the cache does.
    if isinstance(cached, tuple):
        until, fields = cached
        caller_remember(cache_key, fields, until=until)
        return _user_from_fields(fields)
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None:
        return None
    until, fields = time.time() + seconds, _user_fields(token.user)
    cache.set(cache_key, (until, fields), seconds)
    caller_remember(cache_key, fields, until=until)
    return token.user


def api_token_forget(*, key: str) -> None:
    """Forget the token's holder now and after the current transaction commits, in the cache and in
    every process's memo."""
    cache_key = _cache_key(key)
    cache.delete(cache_key)
    transaction.on_commit(lambda: cache.delete(cache_key))
    callers_changed()


class CachedTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's, with the holder read through the cache."""

    def authenticate_credentials(self, key):
        user = api_token_user(key=key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        # The token itself, unread: it is the key and its user, which are both known.
        token = Token(key=key, user_id=user.pk)
        token._state.adding = False
        return user, token


# -- forgetting (connected in SubscriptionsConfig.ready) ------------------------------------------------

def token_changed(sender, instance: Token, **kwargs) -> None:
    api_token_forget(key=instance.key)


def token_user_changed(sender, instance, **kwargs) -> None:
    """A user saved or deleted: forget the entry of the token they hold (one query, only on such writes)."""
    for key in Token.objects.filter(user_id=instance.pk).values_list("key", flat=True):
        api_token_forget(key=key)
