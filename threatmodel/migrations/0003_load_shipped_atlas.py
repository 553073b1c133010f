"""Load the shipped MITRE ATLAS release so ATLAS IDs can be validated from the first run."""

from django.db import migrations


def load(apps, schema_editor):
    from threatmodel.atlas_sync import sync_release
    from threatmodel.catalog import shipped_atlas

    sync_release(
        shipped_atlas(),
        release_model=apps.get_model("threatmodel", "AtlasRelease"),
        entry_model=apps.get_model("threatmodel", "AtlasEntry"),
        name_model=apps.get_model("threatmodel", "AtlasName"),
        source="shipped",
    )


def unload(apps, schema_editor):
    apps.get_model("threatmodel", "AtlasName").objects.all().delete()
    apps.get_model("threatmodel", "AtlasEntry").objects.all().delete()
    apps.get_model("threatmodel", "AtlasRelease").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("threatmodel", "0002_threat_models")]
    operations = [migrations.RunPython(load, unload)]
