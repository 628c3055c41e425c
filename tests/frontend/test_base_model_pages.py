"""The list of the base models the hub hosts under /models/, with the number of adapters built on each, and its
privacy (a model's own page is tested with the repositories: tests/hub/compat/test_base_model_repositories.py)."""

import pytest

from hub.registry.models import ModelRepository
from tests.factories import (
    AdapterVersionFactory,
    BaseModelFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
)
from tests.support.base_models import publish, save_tiny_bert

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def tiny_bert_directory(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def test_the_list_shows_each_hosted_model_with_the_adapters_built_on_it(tiny_bert_directory, client):
    publish(tiny_bert_directory, "tiny-bert")
    NamespaceFactory(name="lab")
    publish(tiny_bert_directory, "lab/tiny-encoder")
    AdapterVersionFactory(adapter__base_model=BaseModelFactory(model_name="tiny-bert"))

    page = client.get("/models/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/models/tiny-bert/"' in html and 'href="/models/lab/tiny-encoder/"' in html
    assert "1 adapter ·" in html and "0 adapters ·" in html
    assert 'href="/models/" aria-current="page"' in html  # the navigation marks where the visitor is


def test_a_private_model_is_listed_to_its_namespace_only(tiny_bert_directory, client):
    namespace = NamespaceFactory(name="secret")
    publish(tiny_bert_directory, "secret/tiny-encoder", "--private")
    assert ModelRepository.objects.get(name="tiny-encoder").private

    assert "tiny-encoder" not in client.get("/models/").content.decode()
    assert client.get("/models/secret/tiny-encoder/").status_code == 404
    member = UserFactory()
    MembershipFactory(user=member, namespace=namespace)
    client.force_login(member)
    assert 'href="/models/secret/tiny-encoder/"' in client.get("/models/").content.decode()
    assert client.get("/models/secret/tiny-encoder/").status_code == 200


def test_an_empty_hub_says_so(client):
    assert "The hub hosts no base model yet." in client.get("/models/").content.decode()
