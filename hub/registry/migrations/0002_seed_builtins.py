from django.db import migrations


def seed(apps, schema_editor):
    from hub.registry.seed import seed_base_models, seed_taxonomy

    seed_taxonomy(apps.get_model("registry", "Task"), apps.get_model("registry", "Subtask"))
    seed_base_models(apps.get_model("registry", "BaseModel"))
    # The built-in architectures are seeded by 0005, once Architecture has its `method` and `aliases`.


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
