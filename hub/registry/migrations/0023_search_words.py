# The words of the search documents (hub.registry.models.SearchWord), filled here from the documents that exist
# and kept by hub.registry.search.refresh_search_documents. On PostgreSQL only: elsewhere there are no documents.

from django.db import migrations, models

FILL_SEARCH_WORDS = """
INSERT INTO registry_searchword (word)
SELECT DISTINCT unnest(tsvector_to_array(search_document)) FROM registry_adapter WHERE search_document IS NOT NULL
ON CONFLICT (word) DO NOTHING
"""


def fill_search_words(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FILL_SEARCH_WORDS)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0022_adapter_name_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchWord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("word", models.TextField(unique=True)),
            ],
        ),
        migrations.RunPython(fill_search_words, migrations.RunPython.noop),
    ]
