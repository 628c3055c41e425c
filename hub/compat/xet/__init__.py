"""Xet storage for the Hugging Face clients (huggingface_hub 2.x uploads through it by default): the token
endpoints and the CAS API (views, urls), the formats without Django (protocol), what is stored and checked
(storage, models) and the hub's own tokens (tokens). Files end as the same blobs LFS uploads make, so commits
name them by sha256 as before."""
