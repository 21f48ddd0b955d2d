import pytest
from rest_framework.authtoken.models import Token

from core.channels_auth import subprotocol_token, token_user
from subscriptions.tests.factories import UserFactory


@pytest.mark.parametrize(("subprotocols", "key"), [
    (["token", "abc"], "abc"),
    (["token", "abc", "json"], "abc"),
    (["token"], None),
    (["json", "token"], None),
    ([], None),
])
def test_only_a_token_subprotocol_pair_carries_a_key(subprotocols, key):
    assert subprotocol_token(subprotocols) == key


@pytest.mark.django_db
def test_token_user_is_the_active_owner_of_the_key():
    user = UserFactory()
    token = Token.objects.create(user=user)
    assert token_user(key=token.key) == user
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert token_user(key=token.key) is None


@pytest.mark.django_db
@pytest.mark.parametrize("key", [None, 42, "", "unknown", "x" * 500, ["list"]])
def test_token_user_refuses_anything_but_a_known_key(key):
    assert token_user(key=key) is None
