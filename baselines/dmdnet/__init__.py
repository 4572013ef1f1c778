"""DMDNet (generic and specific restoration), our own inference port of csxmli2016/DMDNet.

* :mod:`.network` -- the network with the official state-dict layout, batched.
* :mod:`.components` -- component boxes from 68 landmarks (official ``get_component_location``).
* :mod:`.method` -- the ``dmdnet`` and ``dmdnet-specific`` restoration methods.
"""
