"""AdapterHub's v2 index (`/dist/v2/`), generated from the database, for adapter-transformers 3.x clients.

Layout, as the old static site served it:
- `index/<model_name>.json`: {task: {subtask: {"default": path, <config_hash>: {"versions": {<org>: path}}}}}
- `adapters/<org>/<name>.json`: {"config_id", "config", "default_version", "files": {<version>: {url, sha256}}, "info"}
- `architectures.json`: {name: config}, and `all.json`: [info, ...]

Old clients download one archive per version (they unpack zip files), so each valid version gets a
deterministic zip of its files, built once and kept as a blob (`archives`). Generated documents are cached under
a key that changes whenever the registry does (one cheap query checks it), and `write_index` writes the whole
tree to a folder for nginx or a CDN (`documents`). The index shows what anyone may see: public adapters
(`Adapter.objects.public()`). `views` serves it, `urls` routes to them.
"""
