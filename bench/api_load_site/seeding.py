"""Seeding the API load benchmark's database with N adapters (up to millions) in minutes, with a skew like a
real hub's.

The rows go in through PostgreSQL's COPY (psycopg's `cursor.copy`) in one transaction: the secondary indexes
of the four tables are dropped first and rebuilt after the load from their saved definitions (building an
index once is far cheaper than keeping it up to date row by row); the primary keys and unique constraints
stay, so a generator mistake still fails. Foreign keys are not checked row by row during the load
(`session_replication_role = replica`): the generator writes ids it has just assigned. The adapters go through
a staging table so that their search documents are computed in the one INSERT that copies them over (the
expression of migration 0006, which is `hub.registry.search.search_document` in SQL). ANALYZE (with VACUUM,
for the visibility map of index-only scans) runs at the end.

The skew:
- namespaces: a power law over N/10 names, so a few own thousands of adapters (about 18,000 for the largest
  at 1,000,000) and most own one to three;
- download counts: a Pareto law (about half the adapters at 0, a few in the millions);
- descriptions: eight words each from a vocabulary of VOCABULARY_SIZE words drawn by a power law of their rank,
  so a one-word search finds from about 40 adapters (the rarest words) to hundreds of thousands (the
  commonest), and two words narrow that to a handful;
- subtasks and base models: power laws over the seeded ones (bert-base-uncased and the first subtasks lead).

`vocabulary_word(rank)` is the same function the distinct-query rows draw their searches from
(bench.api_load_site.distinct_queries).
"""

import itertools
import random
import sys
import time
from datetime import UTC, datetime, timedelta

# The seeded tables, in load order (each refers only to those before it).
SEEDED_TABLES = ("registry_namespace", "registry_adapter", "registry_adapterversion", "registry_versionfile")
# Marks a database seeded by this layout (a database seeded otherwise is seeded again).
SEED_LAYOUT = "api_load seed layout 2"
VOCABULARY_SIZE = 50_000
DESCRIPTION_WORD_COUNT = 8
# The commonest words of the vocabulary (ranks 0, 1, ...); the rest are made of syllables.
COMMON_WORDS = (
    "compact", "robust", "multilingual", "distilled", "domain", "biomedical", "legal", "news", "social",
    "reviews", "tweets", "finance", "scientific", "dialogue", "clinical", "code", "poetry",
)  # fmt: skip
SYLLABLES = (
    "ka", "lo", "mi", "ne", "ru", "ta", "be", "si", "do", "fa", "gu", "hi", "jo", "ke", "la", "mo", "nu", "pe",
    "qui", "ra", "so", "tu", "va", "we", "xi", "yo", "za", "bro", "cla", "dri", "fle", "gra", "plo", "sta",
    "tri", "vel", "mar", "ton", "lin", "dex",
)  # fmt: skip
# Power-law exponents of the inverse CDF `int(size * u ** exponent)`: larger, more skewed.
NAMESPACE_SKEW = 4
WORD_SKEW = 4
TAXONOMY_SKEW = 2
DOWNLOAD_PARETO_ALPHA = 1.2
MAX_DOWNLOADS = 50_000_000


def vocabulary_word(rank: int) -> str:
    """The word of the description vocabulary with this rank (0 is the commonest)."""
    if rank < len(COMMON_WORDS):
        return COMMON_WORDS[rank]
    index = rank - len(COMMON_WORDS)
    count = len(SYLLABLES)
    return (
        SYLLABLES[index % count]
        + SYLLABLES[(index // count) % count]
        + SYLLABLES[(index // count**2) % count]
    )


def power_law_index(generator: random.Random, size: int, exponent: float) -> int:
    return min(int(size * generator.random() ** exponent), size - 1)


def namespace_count(adapter_count: int) -> int:
    return max(10, adapter_count // 10)


def is_seeded(connection, adapter_count: int) -> bool:
    row = connection.execute(
        "SELECT obj_description('registry_adapter'::regclass, 'pg_class'), (SELECT count(*) FROM registry_adapter)"
    ).fetchone()
    return row == (SEED_LAYOUT, adapter_count)


def _secondary_indexes(connection) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of every index of the seeded tables that backs no constraint."""
    return connection.execute(
        """SELECT index.indexrelid::regclass::text, pg_get_indexdef(index.indexrelid)
           FROM pg_index AS index
           WHERE index.indrelid = ANY(%s::regclass[])
             AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = index.indexrelid)""",
        [list(SEEDED_TABLES)],
    ).fetchall()


class ColumnFiller:
    """The COPY columns of a model and each row's values: those given, else the field's default (so a field
    added to the model later is filled too)."""

    def __init__(self, model, now):
        from django.db.models import JSONField
        from psycopg.types.json import Jsonb

        self.fields = [field for field in model._meta.concrete_fields]
        self.columns = [field.column for field in self.fields]
        defaults = {}
        for field in self.fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = now
            else:
                value = field.get_default()
            defaults[field.column] = Jsonb(value) if isinstance(field, JSONField) else value
        self.defaults = defaults
        self.json_columns = {field.column for field in self.fields if isinstance(field, JSONField)}

    def row(self, values: dict) -> tuple:
        from psycopg.types.json import Jsonb

        return tuple(
            (Jsonb(values[column]) if column in self.json_columns else values[column])
            if column in values
            else self.defaults[column]
            for column in self.columns
        )

    def column_list(self) -> str:
        return ", ".join(f'"{column}"' for column in self.columns)


# The search document of migration 0006 (hub.registry.search.search_document, in SQL), computed while the staged
# adapters are copied into the table.
INSERT_WITH_SEARCH_DOCUMENTS = """
INSERT INTO registry_adapter ({columns}, search_document)
SELECT {staged_columns},
    setweight(to_tsvector('simple', staged.name), 'A')
    || setweight(to_tsvector('simple', concat_ws(' ', task.name, task.display_name, subtask.name,
                                                 subtask.display_name)), 'B')
    || setweight(to_tsvector('simple', concat_ws(' ', namespace.name, base_model.model_name)), 'C')
    || setweight(to_tsvector('simple', staged.description), 'D')
FROM seed_adapter AS staged
JOIN registry_task AS task ON task.id = staged.task_id
JOIN registry_namespace AS namespace ON namespace.id = staged.namespace_id
JOIN registry_basemodel AS base_model ON base_model.id = staged.base_model_id
LEFT JOIN registry_subtask AS subtask ON subtask.id = staged.subtask_id
"""


def load(database_url: str, adapter_count: int, files: dict) -> None:
    """Replace the adapters, versions and files of the database with `adapter_count` seeded ones (namespaces
    are added). `files`: each version's files, {file name: Blob row}."""
    import psycopg

    from adapters_core.configuration import PfeifferConfig, config_hash
    from hub.registry.choices import NamespaceKind, VersionStatus
    from hub.registry.methods import method_family
    from hub.registry.models import Adapter, AdapterVersion, BaseModel, Namespace, Subtask, VersionFile
    from hub.registry.uploads import compute_revision

    started = time.monotonic()
    now = datetime.now(UTC)
    generator = random.Random(adapter_count)
    config = PfeifferConfig().to_dict()
    common = {
        "architecture_name": "pfeiffer",
        "config": config,
        "config_hash": config_hash(PfeifferConfig()),
        "method": method_family(config),
        "status": VersionStatus.VALID,
    }
    subtasks = list(Subtask.objects.select_related("task").order_by("task__name", "name"))
    base_models = list(BaseModel.objects.order_by("model_name"))
    sst2 = next(subtask for subtask in subtasks if subtask.name == "sst-2")
    bert = next(model for model in base_models if model.model_name == "bert-base-uncased")
    # The commonest base model first: bert-base-uncased leads, as on the real hub.
    base_models.sort(key=lambda model: model.pk != bert.pk)
    file_hashes = [(name, blob.sha256) for name, blob in files.items()]

    with psycopg.connect(database_url) as connection:
        connection.execute("SET maintenance_work_mem = '512MB'")
        connection.execute("SET LOCAL session_replication_role = replica")
        indexes = _secondary_indexes(connection)
        connection.execute(
            f"TRUNCATE {', '.join(SEEDED_TABLES[1:])}, registry_searchword RESTART IDENTITY CASCADE"
        )
        for name, _ in indexes:
            connection.execute(f"DROP INDEX {name}")
        print(f"  dropped {len(indexes)} indexes ({time.monotonic() - started:.0f} s)", file=sys.stderr)

        namespaces = ColumnFiller(Namespace, now)
        names = ["ukp"] + [f"org{index}" for index in range(namespace_count(adapter_count))]
        connection.execute("CREATE TEMP TABLE seed_namespace (LIKE registry_namespace) ON COMMIT DROP")
        with connection.cursor().copy(f"COPY seed_namespace ({namespaces.column_list()}) FROM STDIN") as copy:
            for name in names:
                copy.write_row(namespaces.row({"id": 0, "name": name, "kind": NamespaceKind.ORGANIZATION}))
        without_id = ", ".join(column for column in namespaces.columns if column != "id")
        connection.execute(
            f"INSERT INTO registry_namespace ({without_id}) SELECT {without_id} FROM seed_namespace "
            "ON CONFLICT (name) DO NOTHING"
        )
        namespace_ids = dict(
            connection.execute(
                "SELECT name, id FROM registry_namespace WHERE name = ANY(%s)", [names]
            ).fetchall()
        )
        ukp = namespace_ids["ukp"]
        namespace_by_rank = [namespace_ids[name] for name in names[1:]]
        namespace_names = {value: key for key, value in namespace_ids.items()}

        adapters = ColumnFiller(Adapter, now)
        connection.execute("CREATE TEMP TABLE seed_adapter (LIKE registry_adapter) ON COMMIT DROP")
        adapter_rows = []  # (id, namespace id, name) for the versions
        with connection.cursor().copy(f"COPY seed_adapter ({adapters.column_list()}) FROM STDIN") as copy:
            for index in range(adapter_count):
                if index == 0:
                    subtask, base_model, namespace_id = sst2, bert, ukp
                    name, description, downloads = (
                        "bert-base-uncased-sst2",
                        "The adapter the benchmark resolves.",
                        0,
                    )
                else:
                    subtask = subtasks[power_law_index(generator, len(subtasks), TAXONOMY_SKEW)]
                    base_model = base_models[power_law_index(generator, len(base_models), TAXONOMY_SKEW)]
                    namespace_id = namespace_by_rank[
                        power_law_index(generator, len(namespace_by_rank), NAMESPACE_SKEW)
                    ]
                    words = [
                        vocabulary_word(power_law_index(generator, VOCABULARY_SIZE, WORD_SKEW))
                        for _ in range(DESCRIPTION_WORD_COUNT)
                    ]
                    name = f"{words[0]}-{subtask.name}-{index}"
                    description = (
                        f"A {' '.join(words)} adapter for {subtask.task.display_name}: {subtask.display_name}, "
                        f"on {base_model.model_name}."
                    )
                    downloads = min(int(generator.paretovariate(DOWNLOAD_PARETO_ALPHA)) - 1, MAX_DOWNLOADS)
                updated = now - timedelta(seconds=generator.random() * 100_000_000)
                copy.write_row(
                    adapters.row(
                        {
                            "id": index + 1, "namespace_id": namespace_id, "name": name, "type": subtask.task.type,
                            "task_id": subtask.task_id, "subtask_id": subtask.pk, "base_model_id": base_model.pk,
                            "description": description, "download_count": downloads, "created_at": updated,
                            "updated_at": updated, **common,
                        }
                    )
                )  # fmt: skip
                adapter_rows.append((index + 1, namespace_id, name))
        staged = ", ".join(f"staged.{column}" for column in adapters.columns if column != "search_document")
        columns = ", ".join(column for column in adapters.columns if column != "search_document")
        connection.execute(INSERT_WITH_SEARCH_DOCUMENTS.format(columns=columns, staged_columns=staged))
        print(f"  adapters loaded ({time.monotonic() - started:.0f} s)", file=sys.stderr)

        versions = ColumnFiller(AdapterVersion, now)
        with connection.cursor().copy(
            f"COPY registry_adapterversion ({versions.column_list()}) FROM STDIN"
        ) as copy:
            for adapter_id, namespace_id, name in adapter_rows:
                revision = compute_revision(f"{namespace_names[namespace_id]}/{name}", "1", file_hashes)
                copy.write_row(
                    versions.row(
                        {"id": adapter_id, "adapter_id": adapter_id, "version": "1", "revision": revision,
                         "status": VersionStatus.VALID, "validated_at": now}
                    )
                )  # fmt: skip
        version_files = ColumnFiller(VersionFile, now)
        with connection.cursor().copy(
            f"COPY registry_versionfile ({version_files.column_list()}) FROM STDIN"
        ) as copy:
            ids = itertools.count(1)
            for adapter_id, _, _ in adapter_rows:
                for file_name, blob in files.items():
                    copy.write_row(
                        version_files.row(
                            {"id": next(ids), "version_id": adapter_id, "name": file_name, "blob_id": blob.pk}
                        )
                    )
        for table in SEEDED_TABLES:
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        print(f"  versions and files loaded ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        for _, definition in indexes:
            connection.execute(definition)
        connection.execute(f"COMMENT ON TABLE registry_adapter IS '{SEED_LAYOUT}'")
        print(f"  {len(indexes)} indexes built ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        # The documents' words (hub.registry.models.SearchWord), as migration 0023 fills them.
        connection.execute(
            "INSERT INTO registry_searchword (word) SELECT DISTINCT unnest(tsvector_to_array(search_document)) "
            "FROM registry_adapter ON CONFLICT (word) DO NOTHING"
        )
        print(f"  search words listed ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    with psycopg.connect(database_url, autocommit=True) as connection:
        for table in (*SEEDED_TABLES, "registry_searchword"):
            connection.execute(f"VACUUM ANALYZE {table}")
    print(f"seeded {adapter_count:,} adapters in {time.monotonic() - started:.0f} s", file=sys.stderr)
