"""The benchmarks' own PostgreSQL database: created when missing and migrated, from `DATABASE_URL` (each
benchmark sets a default of its own before it imports this)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def create_database() -> None:
    """Create the database `DATABASE_URL` names when PostgreSQL lacks it, then apply every migration."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        if not connection.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            connection.execute(f'create database "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, check=True)
