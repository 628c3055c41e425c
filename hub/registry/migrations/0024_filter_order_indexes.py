from django.db import migrations, models

# The taxonomy columns depend on each other (a task has one type; a subtask one task), which PostgreSQL cannot
# know from per-column statistics: it multiplied `task=nli`'s share by `type=text_task`'s and expected 26,000
# of nli's 89,000 adapters, so it sorted them all for a deep page (280 ms at a million adapters) rather than
# walk the task's recent order (37 ms). Extended statistics (filled by ANALYZE) record the dependencies.
TAXONOMY_STATISTICS = (
    "CREATE STATISTICS IF NOT EXISTS adapter_taxonomy_stats (dependencies) "
    "ON task_id, subtask_id, type, method, base_model_id FROM registry_adapter"
)


def create_taxonomy_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TAXONOMY_STATISTICS)
        schema_editor.execute("ANALYZE registry_adapter")


def drop_taxonomy_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS adapter_taxonomy_stats")


class Migration(migrations.Migration):
    """Indexes for the name and recent orders within a task, subtask, base model or namespace filter: deep pages
    of such lists read the filter's rows in order (see the Adapter model's indexes); and the statistics of how
    the taxonomy columns depend on each other."""

    dependencies = [
        ("registry", "0023_search_words"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="adapter",
            index=models.Index(fields=["task", "name", "namespace"], name="adapter_task_name_idx"),
        ),
        migrations.AddIndex(
            model_name="adapter",
            index=models.Index(fields=["task", "-updated_at", "-id"], name="adapter_task_recent_idx"),
        ),
        migrations.AddIndex(
            model_name="adapter",
            index=models.Index(fields=["subtask", "name", "namespace"], name="adapter_subtask_name_idx"),
        ),
        migrations.AddIndex(
            model_name="adapter",
            index=models.Index(fields=["subtask", "-updated_at", "-id"], name="adapter_subtask_recent_idx"),
        ),
        migrations.AddIndex(
            model_name="adapter",
            index=models.Index(fields=["base_model", "name", "namespace"], name="adapter_model_name_idx"),
        ),
        migrations.AddIndex(
            model_name="adapter",
            index=models.Index(fields=["base_model", "-updated_at", "-id"], name="adapter_model_recent_idx"),
        ),
        migrations.AddIndex(
            model_name="adapter",
            index=models.Index(fields=["namespace", "-updated_at", "-id"], name="adapter_ns_recent_idx"),
        ),
        migrations.RunPython(create_taxonomy_statistics, drop_taxonomy_statistics),
    ]
