"""Metrics with reference parity (PSNR, SSIM, LPIPS, FID, NIQE, identity, landmark distance).

Every metric is one small class with a uniform call on batched tensors (:mod:`evaluation.base`)::

    from evaluation.registry import create_metric, metric_names, resolve_name
    from evaluation.profiles import get_profile, profile_names

    m = create_metric("ssim", device="cpu", profile=get_profile("sr-y"))  # profile pins crop/Y/...; kwargs override
    m.load()                                   # weights via celebref.weights; WeightError when missing
    m.compute(pred, target)["ssim"]            # pred/target: uint8 (N, 3, H, W) RGB -> (N,) float64 CPU tensor
    m.describe()                               # every convention, for run.json

    fid = create_metric("fid").load()
    fid.score(fid.features(pred), fid.features(gt))   # or a statistics file (evaluation.fid.load_statistics)

Attributes of each metric: ``name`` (canonical), ``columns``, ``higher_is_better`` (per column),
``needs_reference``, ``needs_input`` (second argument is the LQ input), ``dataset_level``, ``weights`` (weight-store names), ``last_failures`` (index -> reason
for NaN values). Names: ``psnr``, ``ssim``, ``lpips`` (AlexNet), ``lpips-vgg``, ``fid``, ``niqe``,
``identity`` (columns ``identity_cos``, ``identity_angle``), ``identity-input`` (``identity_input_cos``, restored
vs LQ input, AdaFace IR-50 by default as NTIRE 2025), ``lmd``, ``pyiqa:<name>`` (optional extra); the
registries :data:`evaluation.registry.METRICS` and :data:`evaluation.profiles.PROFILES` list them with their aliases
(``celebref list metrics``, ``celebref list profiles``) and take plugins (entry-point groups ``celebref.metrics``,
``celebref.profiles``). Dataset-level metrics (``dataset_level``) implement ``features``/``features_for_paths`` and
``score`` of the :class:`~evaluation.base.Metric` contract.

Reference implementations each metric is tested against (``../shared/golden/metrics``): BasicSR
``calculate_psnr`` / ``calculate_ssim`` / ``calculate_niqe``, the official ``lpips`` package (v0.1), and
pytorch-fid (FID Inception + Frechet distance). Speed: ``benchmarks/bench_metrics.py``.
"""
