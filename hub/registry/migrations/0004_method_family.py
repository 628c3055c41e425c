from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("registry", "0003_adapterversion_archive")]

    operations = [
        migrations.AddField(
            model_name="adapter",
            name="method",
            field=models.CharField(
                choices=[
                    ("bottleneck", "Bottleneck"),
                    ("compacter", "Compacter"),
                    ("lora", "LoRA"),
                    ("ia3", "IA³"),
                    ("prefix_tuning", "Prefix tuning"),
                    ("prompt_tuning", "Prompt tuning"),
                    ("union", "Union"),
                    ("fusion", "Fusion"),
                ],
                db_index=True,
                default="bottleneck",
                max_length=20,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="architecture",
            name="method",
            field=models.CharField(
                choices=[
                    ("bottleneck", "Bottleneck"),
                    ("compacter", "Compacter"),
                    ("lora", "LoRA"),
                    ("ia3", "IA³"),
                    ("prefix_tuning", "Prefix tuning"),
                    ("prompt_tuning", "Prompt tuning"),
                    ("union", "Union"),
                    ("fusion", "Fusion"),
                ],
                db_index=True,
                default="bottleneck",
                max_length=20,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="architecture",
            name="aliases",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
