"""Save and load a module's parameters as a .npz file (names from ``Module.state_dict``)."""

import numpy as np

__all__ = ["save", "load"]


def save(module, path):
    """Write ``module.state_dict()`` to ``path`` (an .npz archive, written exactly at ``path``)."""
    state = module.state_dict()
    with open(path, "wb") as f:
        np.savez(f, **state)


def load(module, path):
    """Read an .npz written by ``save`` into ``module``'s parameters, in place; returns module."""
    with np.load(path, allow_pickle=False) as archive:
        state = {name: archive[name] for name in archive.files}
    module.load_state_dict(state)
    return module
