from django.db import migrations, models


def fill(apps, schema_editor):
    from hub.registry.seed import lora_site_table

    BaseModel = apps.get_model("registry", "BaseModel")
    for base_model in BaseModel.objects.all():
        try:
            base_model.lora_sites = lora_site_table(base_model.config)
        except ValueError:
            continue  # a model type without adapter support (added in the admin): no LoRA sites to record
        base_model.save(update_fields=["lora_sites"])


class Migration(migrations.Migration):
    dependencies = [("registry", "0008_adapterversion_fuses")]
    operations = [
        migrations.AddField(
            model_name="basemodel",
            name="lora_sites",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The linear layers LoRA may adapt in the model; computed from the config when saved in the admin",
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
