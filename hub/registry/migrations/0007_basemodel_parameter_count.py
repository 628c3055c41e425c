from django.db import migrations, models


def seed(apps, schema_editor):
    from hub.registry.seed import parameter_count, seed_base_models

    BaseModel = apps.get_model("registry", "BaseModel")
    # Adds the base models shipped since (T5, BART, ELECTRA, DeBERTa-v3, Llama, Mistral) with their counts.
    seed_base_models(BaseModel)
    for base_model in BaseModel.objects.filter(parameter_count=0):  # rows added by admins
        base_model.parameter_count = parameter_count(base_model.config)
        base_model.save(update_fields=["parameter_count"])


class Migration(migrations.Migration):
    dependencies = [("registry", "0006_scale_search_lists")]
    operations = [
        migrations.AddField(
            model_name="basemodel",
            name="parameter_count",
            field=models.PositiveBigIntegerField(
                default=0,
                help_text="Parameters of the bare model; computed from the config when saved in the admin",
            ),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
