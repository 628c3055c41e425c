"""Every built-in architecture of the library (LoRA, IA³, prefix tuning, ... next to the bottleneck ones) with
its aliases, and the method family of every stored adapter and architecture (0004 added the column with a
placeholder)."""

from django.db import migrations


def seed_and_backfill(apps, schema_editor):
    from hub.registry.methods import method_family
    from hub.registry.seed import seed_architectures

    Architecture = apps.get_model("registry", "Architecture")
    Adapter = apps.get_model("registry", "Adapter")
    seed_architectures(Architecture)
    for model in (Architecture, Adapter):
        ids_by_method: dict[str, list[int]] = {}
        for pk, config in model.objects.values_list("pk", "config").iterator():
            ids_by_method.setdefault(method_family(config), []).append(pk)
        for method, ids in ids_by_method.items():  # one UPDATE per method family
            model.objects.filter(pk__in=ids).update(method=method)


class Migration(migrations.Migration):
    dependencies = [("registry", "0004_method_family")]
    operations = [migrations.RunPython(seed_and_backfill, migrations.RunPython.noop)]
