"""ASFFNet-512 (Li et al., CVPR 2020; csxmli2016/ASFFNet512 @ 328e166), our own inference port: specific restoration
guided by the best of several HQ references of the same identity.

* :mod:`.params` -- the ``asffnet:k=v`` parameters (imports no torch);
* :mod:`.selection` -- the landmark-based choice of the guiding reference;
* :mod:`.warp` -- the moving-least-squares warp grid and the LQ landmark mask;
* :mod:`.network` -- the network with the official state-dict layout;
* :mod:`.method` -- the ``asffnet`` restoration method.

LQ landmarks. The official script finds the LQ's 68 points with face_alignment's FAN (2-D, on the 512 LQ); FAN
needs weights downloaded from outside the package registries, so we use our face backends (``face_backend``;
``dlib`` offline) unless the test set gives landmarks. Measured on celebref-mini (76 faces degraded by the golden's
recipe, INTER_AREA to 128 then INTER_CUBIC to 512; ``python benchmarks/bench_asffnet.py --landmarks dlib``), dlib's
points on the LQ against the fixture's FAN points of the HQ original: 76/76 detected, mean 8.2 px (6.1 px over the
points 17..67 the method uses), NME 0.047 mean / 0.105 worst (by the outer-eye-corner distance). What it does:

* selection is sensitive: with dlib's points the chosen reference is FAN's choice for 30 of 76 faces, FAN's 2nd or
  3rd best for 24 more, and at worst its 12th (the scores of good candidates differ by a few pixels);
* the warp moves by 1.2 feature pixels (about 5 image pixels) on average over the face box, at most 9.8;
* the landmark mask (6-7 px squares) barely overlaps FAN's: IoU 0.15 on average.

So results with detected landmarks are ASFFNet with dlib landmarks, not the paper's FAN pipeline; give the LQ's FAN
landmarks (``--landmarks gt`` with a degrade output's ground-truth landmarks) to reproduce the official behaviour on
synthetic data. The network itself is checked against the official code with identical landmarks (the golden).
"""
