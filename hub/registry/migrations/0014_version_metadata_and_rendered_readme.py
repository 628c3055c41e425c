"""A version keeps the metadata its upload gave (shown once it is the default version), and an adapter keeps its
README rendered to HTML, so that pages never render Markdown; existing READMEs are rendered here."""

from django.db import migrations, models

from hub.registry.readme import render_readme


def render_existing_readmes(apps, schema_editor):
    Adapter = apps.get_model("registry", "Adapter")
    for adapter in Adapter.objects.exclude(readme="").only("pk", "readme").iterator():
        Adapter.objects.filter(pk=adapter.pk).update(readme_html=render_readme(adapter.readme))


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0013_download_log_position"),
    ]

    operations = [
        migrations.AddField(
            model_name="adapter",
            name="readme_html",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name="adapterversion",
            name="citation",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="adapterversion",
            name="description",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="adapterversion",
            name="license",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.RunPython(render_existing_readmes, migrations.RunPython.noop),
    ]
