"""celebref: identity-grouped face datasets, LQ test-set synthesis, restoration and evaluation.

Conventions used everywhere in the toolkit (see ``celebref.imageio``):

* images in memory are ``numpy.ndarray`` RGB ``uint8`` of shape ``(H, W, 3)`` (HWC);
* float tensors are ``torch.float32`` ``(N, 3, H, W)`` RGB in ``[0, 1]`` unless a function says
  otherwise (network-specific ranges such as ``[-1, 1]`` are converted inside each method);
* landmarks are ``float64`` arrays ``(68, 2)`` of ``(x, y)`` pixels, iBUG 300-W point order.
"""

__version__ = "0.1.0"
