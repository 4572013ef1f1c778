"""ASFFNet-512 (Li et al., CVPR 2020; csxmli2016/ASFFNet512), our own inference port: specific restoration guided
by the best of several HQ references of the same identity.

* :mod:`.params` -- the ``asffnet:k=v`` parameters (imports no torch);
* :mod:`.selection` -- the landmark-based choice of the guiding reference;
* :mod:`.warp` -- the moving-least-squares warp grid and the LQ landmark mask;
* :mod:`.network` -- the network with the official state-dict layout;
* :mod:`.method` -- the ``asffnet`` restoration method.
"""
