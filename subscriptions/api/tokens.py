"""API token authentication without a query per request: who holds a token, kept in the cache.

DRF's TokenAuthentication reads the token and its user on every request (a fifth of a credit debit's
CPU over HTTP). Here the user's row is kept in Django's cache (Redis in production, shared by every
process) under a digest of the key, for at most API_TOKEN_CACHE_SECONDS:
- the raw key is never a cache key and the password hash is never cached (the field is left deferred:
  reading it loads it from the database), so reading Redis gives away neither;
- revoking is immediate: deleting a token, and saving or deleting its user (deactivated, made or unmade
  staff, password changed), forget the entry at once and again after the commit (a request in another
  process that read the old row before the commit cannot leave it behind). These are receivers of
  Django's model signals because Token and User are not our models to give a `save()` of our own; they
  only forget cache entries, no domain flow;
- writes that bypass the models (`QuerySet.update`, raw SQL) and changes made while Redis is down (each
  process then caches in its own memory) are seen within API_TOKEN_CACHE_SECONDS, the documented bound.
Permissions and groups are not cached: a staff user's `has_perms` reads them per request as before.
"""

import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

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
    """The user holding API token `key` (active or not), or None: from the cache, else one query."""
    seconds = settings.API_TOKEN_CACHE_SECONDS
    cache_key = _cache_key(key)
    if seconds > 0:
        fields = cache.get(cache_key)
        if fields is not None:
            return _user_from_fields(fields)
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None:
        return None
    if seconds > 0:
        cache.set(cache_key, _user_fields(token.user), seconds)
    return token.user


def api_token_forget(*, key: str) -> None:
    """Forget the token's cached holder now and after the current transaction commits."""
    cache_key = _cache_key(key)
    cache.delete(cache_key)
    transaction.on_commit(lambda: cache.delete(cache_key))


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
