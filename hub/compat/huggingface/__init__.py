"""The Hugging Face Hub's HTTP API, served from the registry, so that unmodified `huggingface_hub` clients
(and the reference `adapters` library and PEFT, which push through it) read and publish adapters.

Every adapter is a model repository `namespace/name`. Its revisions are its `valid` versions, named by
version label or by their immutable revision id (`AdapterVersion.revision`, the clients' commit sha);
`main`, the clients' default revision, is the adapter's default version (else its newest valid one).
Adapters without a valid version, and private adapters the caller may not see, do not exist here.

Modules:
- `base`: the base views. Every route resolves "the repository this caller may read" (`RepositoryReadView`)
  or "may write" (`RepositoryWriteView`) there, and nowhere else.
- `errors`: errors in the form the clients read (`X-Error-Code`, `X-Error-Message`).
- `lookups`: revisions of an adapter (`main`, the head, a version by label or revision id).
- `representations`: the JSON the clients read (model info, tags, tree entries).
- `paging`: offset pages with `Link: <...>; rel="next"`.
- `read_views`, `write_views`, `lfs`: the routes; `urls`: their URLs.
- `repositories`, `files`, `request_bodies`: what the write routes need (hub.compat.hf_commits does commits).
"""
