"""AdapterFusion (Pfeiffer et al. 2021): an attention over the outputs of several bottleneck adapters.
``config`` holds the fusion configs (torch-free), ``layer`` the fusion module, ``model`` adding, deleting,
training, saving and loading fusions on a model."""
