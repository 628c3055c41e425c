"""Forms of the owners' pages (frontend.owner_views): edit an adapter, manage an organisation's members. Limits
come from adapters_core.upload_metadata and hub.registry.repository_actions; the registry checks them again."""

from django import forms

from adapters_core import upload_metadata
from hub.registry.choices import MemberRole
from hub.registry.models import DEPRECATION_MESSAGE_MAX_LENGTH
from hub.registry.repository_actions import MAX_TAG_LENGTH, MAX_TAGS

# What deprecating does (hub.registry.deprecation), said on both forms that deprecate.
DEPRECATION_HELP = (
    f"Plain text, at most {DEPRECATION_MESSAGE_MAX_LENGTH} characters: why it should no longer be used. It still "
    "resolves and downloads (code that names it keeps working); the adapter's page shows this in a banner and "
    "clients warn. Empty: not deprecated."
)


def deprecation_message_field() -> forms.CharField:
    """The "Deprecated because" field of the adapter's and a version's deprecation (empty: not deprecated)."""
    return forms.CharField(
        required=False,
        max_length=DEPRECATION_MESSAGE_MAX_LENGTH,
        label="Deprecated because",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=DEPRECATION_HELP,
    )


class AdapterEditForm(forms.Form):
    description = forms.CharField(
        required=False,
        max_length=upload_metadata.MAX_DESCRIPTION_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the adapter does, in a few sentences. Lists and search show it.",
    )
    readme = forms.CharField(
        required=False,
        strip=False,
        label="README (model card)",
        widget=forms.Textarea(attrs={"rows": 16, "class": "code"}),
        help_text="Markdown, shown on the adapter's page. A front matter between '---' lines is kept, not shown.",
    )
    license = forms.CharField(
        required=False,
        max_length=upload_metadata.MAX_LICENSE_LENGTH,
        help_text="An SPDX identifier, e.g. apache-2.0 or mit.",
    )
    tags = forms.CharField(
        required=False,
        help_text=f"Comma-separated, at most {MAX_TAGS}, each up to {MAX_TAG_LENGTH} letters, digits, '.', '_', '+' "
        "or '-', e.g. english, movie-reviews.",
    )
    private = forms.BooleanField(
        required=False,
        label="Private",
        help_text="Only members of the namespace see a private adapter, on every route; everyone else gets 404.",
    )
    deprecated_message = deprecation_message_field()
    replaced_by = forms.CharField(
        required=False,
        label="Replaced by",
        help_text="The adapter to use instead, as namespace/name (e.g. ukp/bert-sst2-v2); needs a deprecation.",
    )

    @classmethod
    def for_adapter(cls, adapter, data=None, replacement=None):
        """The form for `adapter`; `replacement` is its replacement as the editor may see it (None if not)."""
        initial = {
            "description": adapter.description,
            "readme": adapter.readme,
            "license": adapter.license,
            "tags": ", ".join(adapter.tags),
            "private": adapter.private,
            "deprecated_message": adapter.deprecated_message,
            "replaced_by": replacement.full_name if replacement else "",
        }
        return cls(data, initial=initial)

    def changes(self) -> dict:
        """The edit as `repository_actions.edit_adapter` takes it. The replacement is sent only when it was
        changed, so that saving the form keeps one the editor cannot see (a private adapter of another
        namespace)."""
        data = dict(self.cleaned_data)
        data["tags"] = [tag for tag in data["tags"].split(",") if tag.strip()]
        if "replaced_by" not in self.changed_data:
            del data["replaced_by"]
        return data


class VersionDeprecationForm(forms.Form):
    deprecated_message = deprecation_message_field()


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="Their username on this hub.")
    role = forms.ChoiceField(
        choices=MemberRole.choices,
        initial=MemberRole.WRITE,
        help_text="Owner: manages members and adapters. Write: publishes versions. Read: sees private adapters.",
    )
