# The list status column (filled from the versions), the search document (filled here, kept by
# hub.registry.signals) and the indexes of lists and search. The GIN indexes and pg_trgm exist on PostgreSQL only;
# the embedded SQLite of `make run` searches without them (see hub.registry.search).

import django.contrib.postgres.search
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models
from django.db.models import Case, CharField, Exists, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce

FILL_SEARCH_DOCUMENTS = """
UPDATE registry_adapter AS adapter SET search_document =
    setweight(to_tsvector('simple', adapter.name), 'A')
    || setweight(to_tsvector('simple', concat_ws(' ', task.name, task.display_name, subtask.name,
                                                 subtask.display_name)), 'B')
    || setweight(to_tsvector('simple', concat_ws(' ', namespace.name, base_model.model_name)), 'C')
    || setweight(to_tsvector('simple', adapter.description), 'D')
FROM registry_adapter AS joined
JOIN registry_task AS task ON task.id = joined.task_id
JOIN registry_namespace AS namespace ON namespace.id = joined.namespace_id
JOIN registry_basemodel AS base_model ON base_model.id = joined.base_model_id
LEFT JOIN registry_subtask AS subtask ON subtask.id = joined.subtask_id
WHERE joined.id = adapter.id
"""

class TrigramExtensionOnPostgres(TrigramExtension):
    """pg_trgm; Django's operation skips other databases going forwards but not backwards."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


GIN_INDEXES = [
    ("adapter_search_idx", "registry_adapter USING gin (search_document)"),
    ("adapter_name_trgm_idx", "registry_adapter USING gin (name gin_trgm_ops)"),
    ("namespace_name_trgm_idx", "registry_namespace USING gin (name gin_trgm_ops)"),
]


def fill_list_status(apps, schema_editor):
    Adapter = apps.get_model("registry", "Adapter")
    AdapterVersion = apps.get_model("registry", "AdapterVersion")
    versions = AdapterVersion.objects.filter(adapter=OuterRef("pk"))
    newest_status = versions.order_by("-created_at", "-id").values("status")[:1]
    Adapter.objects.update(
        status=Case(
            When(Exists(versions.filter(status="valid")), then=Value("valid")),
            default=Coalesce(Subquery(newest_status), Value("")),
            output_field=CharField(),
        )
    )


def create_search_structures(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FILL_SEARCH_DOCUMENTS)
    for name, definition in GIN_INDEXES:
        schema_editor.execute(f"CREATE INDEX {name} ON {definition}")


def drop_search_structures(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in GIN_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0005_seed_every_method'),
    ]

    operations = [
        TrigramExtensionOnPostgres(),
        migrations.AddField(
            model_name='adapter',
            name='search_document',
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name='adapter',
            name='status',
            field=models.CharField(blank=True, choices=[('pending', 'Pending'), ('validating', 'Validating'), ('valid', 'Valid'), ('invalid', 'Invalid'), ('error', 'Error')], default='', max_length=20),
        ),
        migrations.AlterField(
            model_name='adapter',
            name='architecture_name',
            field=models.CharField(max_length=100),
        ),
        migrations.AlterField(
            model_name='adapter',
            name='updated_at',
            field=models.DateTimeField(auto_now=True),
        ),
        migrations.AddIndex(
            model_name='adapter',
            index=models.Index(fields=['task', '-download_count'], name='adapter_task_downloads_idx'),
        ),
        migrations.AddIndex(
            model_name='adapter',
            index=models.Index(fields=['task', 'base_model', '-download_count'], name='adapter_task_model_dl_idx'),
        ),
        migrations.AddIndex(
            model_name='adapter',
            index=models.Index(fields=['subtask', '-download_count'], name='adapter_subtask_dl_idx'),
        ),
        migrations.AddIndex(
            model_name='adapter',
            index=models.Index(fields=['base_model', '-download_count'], name='adapter_model_downloads_idx'),
        ),
        migrations.AddIndex(
            model_name='adapter',
            index=models.Index(fields=['namespace', '-download_count'], name='adapter_ns_downloads_idx'),
        ),
        migrations.AddIndex(
            model_name='adapter',
            index=models.Index(fields=['architecture_name', '-download_count'], name='adapter_arch_dl_idx'),
        ),
        migrations.AddIndex(
            model_name='adapter',
            index=models.Index(fields=['type', '-download_count'], name='adapter_type_downloads_idx'),
        ),
        migrations.AddIndex(
            model_name='adapter',
            index=models.Index(fields=['status', '-download_count'], name='adapter_status_dl_idx'),
        ),
        migrations.AddIndex(
            model_name='adapter',
            index=models.Index(fields=['-updated_at', '-id'], name='adapter_recent_idx'),
        ),
        migrations.AddIndex(
            model_name='adapter',
            index=models.Index(
                condition=models.Q(('private', False)), fields=['-download_count'], name='adapter_public_dl_idx'
            ),
        ),
        migrations.RunPython(fill_list_status, migrations.RunPython.noop),
        migrations.RunPython(create_search_structures, drop_search_structures),
    ]
