"""The UI's pages through Django's test client: content, filters, errors, query counts and page weight."""

import html as html_lib
import io
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.urls import reverse

from adapters_core.configuration import CANONICAL_BUILTIN_NAMES
from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.models import Adapter, AdapterVersion, ApiToken, BaseModel
from hub.registry.tokens import create_token, find_active_token
from tests.factories import UserFactory, VersionFileFactory, adapter_config_json, weights_bytes

MAX_QUERIES = 6
MAX_PAGE_BYTES = 100 * 1024

PUBLIC_PAGES = [
    "/",
    "/explore/",
    "/adapters/",
    "/adapters/?task=sentiment&architecture=pfeiffer",
    "/adapters/?q=movie&sort=recent",
    "/adapters/ukp/",
    "/adapters/ukp/sst-2/",
    "/adapters/nlpgroup/rte/",
    "/architectures/",
    "/architectures/pfeiffer+inv/",
]


def listed_names(response) -> list[str]:
    """The `namespace/name` of each adapter row on a list page, in order."""
    return re.findall(r'<h3><a href="/adapters/[^"]+/">([^<]+)</a>', response.content.decode())


@pytest.mark.parametrize("url", PUBLIC_PAGES)
def test_public_pages_render_within_the_query_budget(client, catalogue, django_assert_max_num_queries, url):
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(url)
    assert response.status_code == 200


@pytest.mark.parametrize("url", [*PUBLIC_PAGES, "/accounts/tokens/", "/accounts/upload/"])
def test_pages_signed_in_stay_within_the_query_budget(
    signed_in, catalogue, django_assert_max_num_queries, url
):
    # One more than for anonymous visitors: an adapter's page asks the visitor's role in its namespace, to show
    # owners their block (frontend.templatetags.owner_tags).
    with django_assert_max_num_queries(MAX_QUERIES + 1):
        response = signed_in.get(url)
    assert response.status_code == 200


class AssetCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.assets = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.assets.append(attrs["href"])
        if tag == "script" and attrs.get("src"):
            self.assets.append(attrs["src"])


@pytest.mark.parametrize("url", [*PUBLIC_PAGES, "/accounts/upload/", "/accounts/tokens/"])
def test_every_page_weighs_at_most_100_kb_with_its_css_and_js(signed_in, catalogue, url):
    response = signed_in.get(url)
    collector = AssetCollector()
    collector.feed(response.content.decode())
    assert collector.assets, "the page links its stylesheet and script"
    total = len(response.content)
    for asset in collector.assets:
        path = finders.find(asset.removeprefix("/static/"))
        assert path, f"{asset} is served locally"
        total += Path(path).stat().st_size
    assert total <= MAX_PAGE_BYTES, f"{url} weighs {total} bytes"


def test_every_asset_is_served_by_the_hub_itself(client, catalogue):
    for url in PUBLIC_PAGES:
        collector = AssetCollector()
        collector.feed(client.get(url).content.decode())
        assert all(asset.startswith("/static/") for asset in collector.assets), (url, collector.assets)


def test_home_shows_counts_recent_and_most_downloaded(client, catalogue):
    response = client.get("/")
    html = response.content.decode()
    counts = response.context["counts"]
    # The private adapter and the invalid one (listed to its namespace only) are not counted for an anonymous
    # visitor.
    assert counts["adapters"] == 3
    assert counts["architectures"] == len(CANONICAL_BUILTIN_NAMES)  # every built-in of the library
    assert counts["tasks"] == 5 and counts["languages"] == 9
    popular = [adapter.full_name for adapter in response.context["popular"]]
    assert popular[:2] == ["ukp/sst-2", "nlpgroup/de-wiki"]
    assert 'role="search"' in html and "secret" not in html


def test_list_filters_by_task_and_architecture_from_the_url(client, catalogue):
    response = client.get("/adapters/", {"task": "sentiment", "architecture": "pfeiffer"})
    assert listed_names(response) == ["ukp/sst-2"]
    html = response.content.decode()
    # The filters show what is applied, and each can be removed with one link.
    assert '<option value="sentiment" selected>' in html
    assert 'aria-label="Remove filter architecture: pfeiffer"' in html


def test_list_filters_by_language_type_namespace_and_status(client, catalogue):
    assert listed_names(client.get("/adapters/", {"language": "de"})) == ["nlpgroup/de-wiki"]
    assert listed_names(client.get("/adapters/", {"type": "text_lang"})) == ["nlpgroup/de-wiki"]
    # rte has no valid version: listed to nlpgroup's members only (AdapterQuerySet.listed_to).
    assert listed_names(client.get("/adapters/", {"namespace": "nlpgroup"})) == ["nlpgroup/de-wiki"]
    assert listed_names(client.get("/adapters/", {"status": "invalid"})) == []
    client.force_login(get_user_model().objects.get(username="carol"))
    assert listed_names(client.get("/adapters/", {"status": "invalid"})) == ["nlpgroup/rte"]
    assert "nlpgroup/rte" not in listed_names(client.get("/adapters/", {"status": "valid"}))
    assert listed_names(client.get("/adapters/", {"model_name": "bert-base-multilingual-cased"})) == [
        "nlpgroup/de-wiki"
    ]


def test_list_sorts_by_downloads_recency_and_name(client, catalogue):
    assert listed_names(client.get("/adapters/"))[:3] == ["ukp/sst-2", "nlpgroup/de-wiki", "ukp/imdb"]
    Adapter.objects.filter(name="rte").update(description="touched")  # auto_now is not set by update()
    rte = Adapter.objects.get(name="rte")
    rte.save()
    client.force_login(
        get_user_model().objects.get(username="carol")
    )  # rte is listed to nlpgroup's members only
    assert listed_names(client.get("/adapters/", {"sort": "recent"}))[0] == "nlpgroup/rte"
    assert listed_names(client.get("/adapters/", {"sort": "name"}))[0] == "nlpgroup/de-wiki"


def test_list_search_with_no_results_gives_a_hint(client, catalogue):
    response = client.get("/adapters/", {"q": "zebra crossing"})
    html = response.content.decode()
    assert response.status_code == 200
    assert listed_names(response) == []
    assert 'id="no-results"' in html and "Try fewer or shorter words" in html


@pytest.mark.parametrize(
    "query",
    [
        {"task": "no-such-task"},
        {"architecture": "nope"},
        {"status": "bogus"},
        {"type": "bogus"},
        {"page": "99"},  # past the last page, within the offset bound (see test_search_and_lists)
    ],
)
def test_unknown_filter_values_answer_with_a_hint_not_an_error(client, catalogue, query):
    response = client.get("/adapters/", query)
    assert response.status_code == 200
    html = response.content.decode()
    if "page" in query:
        assert listed_names(response), "an out-of-range page shows the last page"
        return
    assert listed_names(response) == []
    assert "No adapters match" in html
    value = next(iter(query.values()))
    assert f"{value} (unknown)" in html or "not valid" in html


def test_pagination_keeps_the_filters(client, catalogue):
    ukp = catalogue["sst-2"].namespace
    for index in range(25):
        Adapter.objects.create(
            namespace=ukp,
            name=f"bulk-{index:02d}",
            task=catalogue["sst-2"].task,
            base_model=catalogue["sst-2"].base_model,
            architecture_name="pfeiffer",
            config=catalogue["sst-2"].config,
            config_hash=catalogue["sst-2"].config_hash,
            status="valid",  # listed to everyone as if validated
        )
    response = client.get("/adapters/", {"namespace": "ukp", "sort": "name"})
    assert len(listed_names(response)) == 20
    html = response.content.decode()
    assert 'href="?namespace=ukp&amp;sort=name&amp;page=2"' in html
    second = client.get("/adapters/", {"namespace": "ukp", "sort": "name", "page": 2})
    assert len(listed_names(second)) == 7


def test_private_adapters_show_only_to_members(client, catalogue):
    assert client.get("/adapters/nlpgroup/secret/").status_code == 404
    assert "nlpgroup/secret" not in listed_names(client.get("/adapters/"))
    client.force_login(UserFactory(username="carol"))
    assert client.get("/adapters/nlpgroup/secret/").status_code == 200
    assert "nlpgroup/secret" in listed_names(client.get("/adapters/"))


def test_adapter_page_shows_identifier_snippets_versions_and_citation(client, catalogue):
    response = client.get("/adapters/ukp/sst-2/")
    html = response.content.decode()
    assert "sentiment/sst-2@ukp" in html
    assert "model.load_adapter(&quot;sentiment/sst-2@ukp&quot;" not in html
    # The reference library's default call: the hub serves pytorch_adapter.bin beside adapter.safetensors.
    assert "adapter_name = model.load_adapter(&quot;ukp/sst-2&quot;, version=&quot;1&quot;)" in html
    assert "use_safetensors" not in html
    assert "HF_ENDPOINT&quot;] = &quot;http://testserver&quot;" in html
    assert "bert-base-uncased" in html and "Task adapter" in html
    version = AdapterVersion.objects.get(adapter=catalogue["sst-2"])
    for version_file in version.files.select_related("blob"):
        assert version_file.blob.sha256 in html
        assert f'href="/api/v1/adapters/ukp/sst-2/versions/1/files/{version_file.name}"' in html
    assert "@inproceedings{demo2024" in html
    assert '<span class="badge badge-valid">valid</span>' in html
    # Config keys with their meaning, and the diagram of the layer.
    assert "<code>reduction_factor</code>" in html and "<svg" in html


def test_the_peft_snippet_shows_when_the_current_version_is_served_with_peft_weights(client, catalogue):
    assert 'id="snippet-peft"' not in client.get("/adapters/ukp/sst-2/").content.decode()
    version = AdapterVersion.objects.get(adapter=catalogue["sst-2"])
    VersionFileFactory(version=version, name="adapter_model.safetensors", derived=True)

    html = client.get("/adapters/ukp/sst-2/").content.decode()
    assert 'id="snippet-peft"' in html
    assert (
        "PeftModel.from_pretrained(AutoModel.from_pretrained(&quot;bert-base-uncased&quot;), &quot;ukp/sst-2&quot;, revision=&quot;1&quot;)"
        in html
    )


def test_readme_is_rendered_from_markdown_and_sanitised(client, catalogue):
    html = client.get("/adapters/ukp/sst-2/").content.decode()
    readme = html[html.index('<div class="readme">') :]
    readme = readme[: readme.index("</div>")]
    assert "<strong>SST-2</strong>" in readme and "<table>" in readme
    assert "<script" not in readme and "onerror" not in readme and 'href="javascript:' not in readme
    assert 'href="https://example.org/paper"' in readme and "nofollow" in readme


def test_invalid_version_shows_the_report_and_no_download_links(client, catalogue):
    html = client.get("/adapters/nlpgroup/rte/").content.decode()
    assert "adapter.safetensors is missing 12 tensors" in html
    assert "✗ structure" in html and "Missing tensors: layer 0 adapter_up." in html
    assert "/files/adapter.safetensors" not in html
    assert "No version of this adapter is valid yet" in html


@pytest.mark.parametrize(
    "url",
    [
        "/adapters/ukp/no-such-adapter/",
        "/adapters/no-such-namespace/",
        "/architectures/no-such-architecture/",
    ],
)
def test_unknown_things_answer_a_friendly_404(client, catalogue, url):
    response = client.get(url)
    assert response.status_code == 404
    html = response.content.decode()
    assert "Not found" in html and "Search all adapters" in html
    assert "no-such" in html  # the message names what was not found


def test_namespace_page_lists_adapters_and_members(client, catalogue):
    response = client.get("/adapters/nlpgroup/")
    html = response.content.decode()
    assert listed_names(response) == ["nlpgroup/de-wiki"]  # rte has no valid version
    assert "carol" in html and "NLP Group" in html
    client.force_login(get_user_model().objects.get(username="carol"))
    assert listed_names(client.get("/adapters/nlpgroup/")) == [
        "nlpgroup/de-wiki",
        "nlpgroup/rte",
        "nlpgroup/secret",
    ]


def test_architecture_pages_show_keys_snippets_and_diagram(client, catalogue):
    listing = client.get("/architectures/").content.decode()
    for name in ("pfeiffer", "houlsby", "pfeiffer+inv", "houlsby+inv", "parallel"):
        assert f'href="/architectures/{name}/"' in listing
    html = client.get("/architectures/pfeiffer+inv/").content.decode()
    assert "AdapterConfig.load(&quot;pfeiffer+inv&quot;)" in html
    assert "AdapterConfig.load(&quot;pfeiffer+inv&quot;, reduction_factor=12)" in html
    assert "Invertible adapter (NICE)" in html
    assert "<code>inv_adapter</code></th><td><code>&quot;nice&quot;</code>" in html
    assert "nlpgroup/de-wiki" in html  # adapters that use it


def test_explore_groups_tasks_and_languages_with_counts(client, catalogue):
    response = client.get("/explore/")
    html = response.content.decode()
    tasks = {task.name: task for task in response.context["task_groups"]}
    languages = {task.name: task for task in response.context["language_groups"]}
    assert tasks["sentiment"].adapter_count == 2
    assert {s.name: s.adapter_count for s in tasks["sentiment"].subtasks.all()} == {"imdb": 1, "sst-2": 1}
    assert languages["de"].adapter_count == 1
    assert "sentiment" not in languages and "de" not in tasks
    assert 'href="/adapters/?task=sentiment&amp;subtask=sst-2"' in html


# --- account pages ---------------------------------------------------------------------------------


def test_account_pages_require_sign_in(client, db):
    for url in ("/accounts/tokens/", "/accounts/upload/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_sign_in_and_out(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert (
        response.status_code == 200
        and "Please enter a correct username and password" in response.content.decode()
    )
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert "Sign out alice" in client.get("/").content.decode()
    client.post("/accounts/logout/")
    assert "Sign in" in client.get("/").content.decode()


def test_token_is_shown_once_and_works_until_revoked(signed_in, user):
    response = signed_in.post(
        "/accounts/tokens/", {"name": "laptop", "scope": "write", "expires_in_days": "30"}
    )
    html = response.content.decode()
    raw = re.search(r'<code id="new-token-value">(ah_[^<]+)</code>', html).group(1)
    token = find_active_token(raw)
    assert (
        token is not None
        and token.user == user
        and token.scope == TokenScope.WRITE
        and token.name == "laptop"
    )
    assert token.expires_at is not None
    # The secret is not stored, and the next visit shows only its prefix.
    later = signed_in.get("/accounts/tokens/").content.decode()
    assert raw not in later and token.key_prefix in later
    response = signed_in.post(f"/accounts/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    assert find_active_token(raw) is None
    assert "revoked" in signed_in.get("/accounts/tokens/").content.decode()


def test_token_form_errors_are_shown_next_to_the_field(signed_in, user):
    response = signed_in.post("/accounts/tokens/", {"name": "x", "scope": "root"})
    html = response.content.decode()
    assert ApiToken.objects.count() == 0
    assert re.search(r'data-errors-for="scope"><li>Select a valid choice', html)


def test_nobody_revokes_another_users_token(signed_in, db):
    token, raw = create_token(UserFactory(username="mallory"))
    assert signed_in.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert find_active_token(raw) is not None


# --- upload ----------------------------------------------------------------------------------------


def adapter_upload_files():
    config = adapter_config_json(model_name="bert-base-uncased")
    return {"adapter_config.json": config, "adapter.safetensors": weights_bytes(seed=3)}


def upload_data(**overrides):
    data = {"namespace": "alice", "name": "my-sst", "version": "1", "task": "sentiment", "subtask": "sst-2"}
    data.update(overrides)
    return data


def as_uploads(files):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return [SimpleUploadedFile(name, content) for name, content in files.items()]


def test_upload_stores_a_pending_version_and_redirects_to_it(
    signed_in, catalogue, django_capture_on_commit_callbacks
):
    data = upload_data(files=as_uploads(adapter_upload_files()))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = signed_in.post("/accounts/upload/", data)
    assert response.status_code == 302 and response["Location"] == "/adapters/alice/my-sst/"
    version = AdapterVersion.objects.get(adapter__namespace__name="alice", adapter__name="my-sst")
    assert version.status == VersionStatus.PENDING
    assert sorted(version.files.values_list("name", flat=True)) == [
        "adapter.safetensors",
        "adapter_config.json",
    ]
    assert callbacks, "validation is queued when the upload commits"


def test_upload_answers_json_with_the_status_url_for_the_page_script(signed_in, catalogue):
    data = upload_data(files=as_uploads(adapter_upload_files()))
    response = signed_in.post("/accounts/upload/", data, HTTP_ACCEPT="application/json")
    assert response.status_code == 202
    body = response.json()
    assert body["status_url"] == reverse("api:version-detail", args=["alice", "my-sst", "1"])
    assert body["adapter_url"] == "/adapters/alice/my-sst/" and body["status"] == "pending"
    status = signed_in.get(body["status_url"], HTTP_ACCEPT="application/json")
    assert status.status_code == 200 and status.json()["status"] == "pending"


def test_upload_accepts_a_zip_of_the_directory(signed_in, catalogue):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in adapter_upload_files().items():
            archive.writestr(f"my_adapter/{name}", content)
        archive.writestr("my_adapter/README.md", "# Zipped\n")
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = upload_data(archive=SimpleUploadedFile("my_adapter.zip", buffer.getvalue()))
    response = signed_in.post("/accounts/upload/", data)
    assert response.status_code == 302
    adapter = Adapter.objects.get(namespace__name="alice", name="my-sst")
    assert adapter.readme == "# Zipped\n"
    assert adapter.versions.get().files.count() == 3


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"files": None}, "files", "Select the adapter directory"),
        ({"task": "astrology"}, "task", "Select a valid choice"),
        ({"name": "bad/name"}, "name", "contains '/'"),
        ({"namespace": "ukp"}, "namespace", "Select a valid choice"),
        ({"subtask": "imdb", "task": "nli"}, "subtask", "Unknown subtask 'imdb' of task 'nli'"),
    ],
)
def test_upload_errors_are_shown_next_to_the_field_and_store_nothing(
    signed_in, catalogue, overrides, field, message
):
    files = as_uploads(adapter_upload_files())
    data = upload_data(files=files)
    data.update({key: value for key, value in overrides.items() if value is not None})
    if overrides.get("files", "keep") is None:
        del data["files"]
    response = signed_in.post("/accounts/upload/", data)
    assert response.status_code == 400
    html = response.content.decode()
    errors = html_lib.unescape(re.search(rf'data-errors-for="{field}">(.*?)</ul>', html, re.S).group(1))
    assert message in errors
    assert not Adapter.objects.filter(namespace__name="alice").exists()
    json_response = signed_in.post(
        "/accounts/upload/",
        {**data, "files": as_uploads(adapter_upload_files())} if "files" in data else data,
        HTTP_ACCEPT="application/json",
    )
    assert json_response.status_code == 400
    assert message in json_response.json()["errors"][field][0]["message"]


def test_upload_refuses_a_zip_with_foreign_files(signed_in, catalogue):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("adapter_config.json", adapter_upload_files()["adapter_config.json"])
        archive.writestr("run.sh", "rm -rf /")
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = signed_in.post(
        "/accounts/upload/", upload_data(archive=SimpleUploadedFile("a.zip", buffer.getvalue()))
    )
    assert response.status_code == 400
    assert "run.sh, which is not an adapter file" in response.content.decode()
    assert BaseModel.objects.exists() and not Adapter.objects.filter(namespace__name="alice").exists()


def test_readme_headings_sit_below_the_page_headings(client, catalogue):
    html = client.get("/adapters/ukp/sst-2/").content.decode()
    assert html.count("<h1") == 1
    assert "<h3>SST-2 adapter</h3>" in html


def test_a_model_cards_front_matter_is_not_shown(client, catalogue):
    adapter = catalogue["sst-2"]
    adapter.readme = (
        "---\ntags:\n- adapter-transformers\nlicense: mit\n---\n\n# Adapter for bert\n\nTrained on SST-2.\n"
    )
    adapter.save(update_fields=["readme"])  # renders readme_html
    html = client.get("/adapters/ukp/sst-2/").content.decode()
    readme = html[html.index('<div class="readme">') :]
    readme = readme[: readme.index("</div>")]
    assert "<h3>Adapter for bert</h3>" in readme and "Trained on SST-2." in readme
    assert "adapter-transformers" not in readme and "license" not in readme and "<hr" not in readme


def test_an_unknown_sort_order_is_named(client, catalogue):
    response = client.get("/adapters/", {"sort": "stars"})
    assert response.status_code == 200
    assert (
        "stars is not one of the accepted values: relevance, downloads, recent, name."
        in response.content.decode()
    )


def test_an_unknown_url_answers_the_friendly_404(client, db):
    response = client.get("/no/such/page/here/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "There is nothing at <code>/no/such/page/here/</code>" in html and "Resolver404" not in html


def test_reusing_a_version_label_for_other_files_is_refused_at_the_version_field(signed_in, catalogue):
    assert (
        signed_in.post("/accounts/upload/", upload_data(files=as_uploads(adapter_upload_files()))).status_code
        == 302
    )
    other_files = {**adapter_upload_files(), "adapter.safetensors": weights_bytes(seed=4)}
    response = signed_in.post("/accounts/upload/", upload_data(files=as_uploads(other_files)))
    assert response.status_code == 400
    errors = html_lib.unescape(
        re.search(r'data-errors-for="version">(.*?)</ul>', response.content.decode(), re.S)[1]
    )
    assert "already exists with other files" in errors and "version=2" in errors
    assert AdapterVersion.objects.filter(adapter__name="my-sst").count() == 1


def test_a_version_waiting_for_a_gpu_worker_says_so(client, db):
    from hub.registry.choices import VersionStatus
    from tests.factories import AdapterFactory, AdapterVersionFactory, BaseModelFactory

    adapter = AdapterFactory(base_model=BaseModelFactory(model_name="mistralai/Mistral-7B-v0.1"))
    AdapterVersionFactory(adapter=adapter, status=VersionStatus.PENDING, files=False)

    html = client.get(f"/adapters/{adapter.namespace.name}/{adapter.name}/").content.decode()

    assert "Waiting for: A GPU worker (queue validation-gpu): the reference model of" in html
    assert "mistralai/Mistral-7B-v0.1 takes 28.4 GB in float32" in html
