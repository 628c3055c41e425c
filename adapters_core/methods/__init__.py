"""Adapter methods, one folder each. A folder's ``__init__`` registers the method once
(:func:`adapters_core.methods.registry.register_method`): its config (torch-free, read by the hub's web
processes), built-ins, the code that puts its modules into a model, and what the hub shows of it. Importing
this package registers the built-in methods and every method another installed package declares under the
``adapters_core.methods`` entry point group; it imports no torch.
"""

import importlib.metadata

# The built-in methods, bottleneck (the default architecture) first: the order the hub lists them in.
import adapters_core.methods.bottleneck  # isort: skip  # noqa: F401
import adapters_core.methods.lora  # isort: skip  # noqa: F401
import adapters_core.methods.prefix_tuning  # isort: skip  # noqa: F401
import adapters_core.methods.prompt_tuning  # isort: skip  # noqa: F401
import adapters_core.methods.module_lora  # isort: skip  # noqa: F401
from adapters_core.methods.registry import ENTRY_POINT_GROUP  # isort: skip

for _entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
    _entry_point.load()

# Last: the built-in unions are made of the other methods' built-ins.
import adapters_core.methods.unions  # isort: skip  # noqa: E402, F401
