from django.db import migrations, models


class Migration(migrations.Migration):
    """An index for lists sorted by name (`sort=name`): the adapter's name, then its namespace's id, the order
    hub.registry.filtersets.SORT_ORDERS gives them."""

    dependencies = [
        ("registry", "0021_mirrored_repositories"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="adapter",
            index=models.Index(fields=["name", "namespace"], name="adapter_name_idx"),
        ),
    ]
