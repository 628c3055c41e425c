from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from hub.registry.choices import TokenScope
from hub.registry.models import ApiToken, Namespace
from hub.registry.tokens import find_active_token


def issue_token(*args):
    stdout = StringIO()
    call_command("issue_token", *args, stdout=stdout)
    return stdout.getvalue()


@pytest.mark.django_db
def test_issue_token_creates_the_user_and_prints_only_the_token():
    output = issue_token("ada", "--write")
    raw_token = output.strip()
    assert output == raw_token + "\n"
    assert get_user_model().objects.filter(username="ada").exists()
    assert Namespace.objects.filter(name="ada", memberships__user__username="ada").exists()
    token = find_active_token(raw_token)
    assert token is not None and token.scope == TokenScope.WRITE
    # Only the hash is stored.
    assert not ApiToken.objects.filter(key_hash=raw_token).exists()
    assert raw_token not in str(list(ApiToken.objects.values_list("key_hash", "key_prefix")))


@pytest.mark.django_db
def test_issue_token_for_an_existing_user_adds_a_read_token_by_default():
    first = issue_token("grace").strip()
    second = issue_token("grace").strip()
    assert first != second
    assert get_user_model().objects.filter(username="grace").count() == 1
    assert find_active_token(second).scope == TokenScope.READ
    assert find_active_token("ah_not-a-token") is None
