import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0002_seed_builtins"),
    ]

    operations = [
        migrations.AddField(
            model_name="adapterversion",
            name="archive",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="registry.blob",
            ),
        ),
    ]
