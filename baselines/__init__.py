"""Restoration methods behind one registry (:mod:`baselines.registry`): DMDNet (generic and
specific), DFDNet, GFPGAN v1.4, CodeFormer, classical baselines and external results."""
