from django.db import migrations


def seed(apps, schema_editor):
    from hub.registry.seed import seed_taxonomy

    # Base models are seeded by 0004, once BaseModel has every field the seed fills; the built-in
    # architectures by 0005, once Architecture has its `method` and `aliases`.
    seed_taxonomy(apps.get_model("registry", "Task"), apps.get_model("registry", "Subtask"))


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
