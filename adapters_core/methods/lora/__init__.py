"""The LoRA family: LoRA (additive low-rank update), IA³ (``composition_mode="scale"``: a learned vector
scales the output) and DoRA (``use_dora``: magnitude and direction). ``config`` holds the configs and
built-in names (torch-free), ``layer`` the modules that wrap a model's linear layers, ``model`` where they
go in a model family and merging, ``peft`` the mapping to and from PEFT's directory format (torch-free)."""
