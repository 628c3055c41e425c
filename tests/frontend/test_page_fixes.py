"""Smaller fixes of the web pages: architecture descriptions shown as written (not letter-spaced), each
configuration key explained by its own method's help, the upload form without a chosen task."""

import pytest

from adapters_core.configuration import AdapterConfig
from frontend.config_keys import config_rows
from hub.registry.models import Architecture
from tests.support.seeding import seed_builtins


@pytest.mark.django_db
def test_architecture_descriptions_are_shown_as_written(client):
    seed_builtins()
    described = Architecture.objects.exclude(description="").first()
    assert described is not None
    html = client.get("/architectures/").content.decode()
    assert f"<p>{described.description}</p>" in html
    assert " ".join(described.description[:12]) not in html  # letter-spaced: "B o t t l e n e c k"


def test_bottleneck_keys_are_explained_without_lora_words():
    bottleneck = dict(
        (key, meaning) for key, _, meaning in config_rows(AdapterConfig.load("pfeiffer").to_dict())
    )
    lora = dict((key, meaning) for key, _, meaning in config_rows(AdapterConfig.load("lora").to_dict()))
    assert "LoRA" not in bottleneck["init_weights"] and "lora" not in bottleneck["init_weights"]
    assert "LoRA" in lora["init_weights"]
    assert not any("(lora:" in meaning for meaning in bottleneck.values())


@pytest.mark.django_db
def test_the_upload_form_has_no_task_chosen(client):
    from tests.factories import UserFactory

    seed_builtins()
    client.force_login(UserFactory(username="alice"))
    html = client.get("/accounts/upload/").content.decode()
    assert '<option value="" selected>Choose a task</option>' in html
