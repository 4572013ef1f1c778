"""GFPGAN v1.4 (TencentARC/GFPGAN, "clean" architecture), reimplemented for celebref:
:mod:`.arch` (network), :mod:`.faces` (BasicSR-convention conversions shared with CodeFormer),
:mod:`.method` (the ``gfpgan`` restoration method)."""
