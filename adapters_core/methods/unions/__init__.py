"""The built-in unions of several methods: mam and unipelt."""
