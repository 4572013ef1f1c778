"""CodeFormer (sczhou/CodeFormer), reimplemented for celebref: :mod:`.arch` (network), :mod:`.method` (the ``codeformer`` method)."""
