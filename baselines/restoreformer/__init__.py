"""RestoreFormer (GFPGAN release) and RestoreFormer++ (wzhouxiff/RestoreFormerPlusPlus), reimplemented for celebref:
:mod:`.blocks` (shared VQ / attention / residual blocks), :mod:`.arch` (the two networks), :mod:`.method` (the
``restoreformer`` and ``restoreformer++`` methods)."""
