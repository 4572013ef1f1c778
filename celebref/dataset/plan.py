"""Where each accepted file goes: identity ids, the identity-disjoint split, held-out probes, output paths.

* identity ids: 5-digit, in sorted order of the (assigned) person-folder names of the identities kept;
* image numbers ``n``: 0.. in sorted ``source_path`` order within the identity (never completion order);
* test identities give ``probes_per_identity`` held-out *probe* images (chosen by ``sha256("<seed>:<source_path>")``
  order), written to ``probes/<id>_<n>.png`` (landmarks ``probe_landmarks/<id>_<n>.png.txt``) and **not** to
  ``images/<id>/``, so that DMDNet's reference folder never contains the ground truth of its input (as in DMDNet's
  own test set: ``SynLQ/<id>_<n>.png`` + ``RefsImg/<id>/``).
"""

from __future__ import annotations

import hashlib

from .identity import collision_components
from .split import split_groups


def plan_outputs(records: list[dict], result: dict, th: dict) -> dict:
    """Identity ids, split, probes, numbering and output paths (mutates the accepted records). Returns
    ``{"identities": rows of identities.csv, "ids": {folder: id}, "centroids_by_id", "skipped_probes"}``;
    an identity's ``merged_folders`` lists the other crawl folders its files came from (merges, overrides)."""
    acc: dict[str, list[dict]] = {}
    for r in records:
        if r["decision"] == "accepted":
            acc.setdefault(r["assigned_folder"], []).append(r)
    folders = sorted(acc)
    ids = {f: f"{k:05d}" for k, f in enumerate(folders)}
    coll = [c for c in result["collisions"] if c.folder_a in acc and c.folder_b in acc]
    split = split_groups(collision_components(folders, coll), th["test_fraction"], th["seed"])
    identities, skipped = [], []
    for f in folders:
        rs = sorted(acc[f], key=lambda r: r["source_path"])
        iid = ids[f]
        probes: set[str] = set()
        if split[f] == "test":
            p = th["probes_per_identity"]
            if p > 0 and len(rs) >= p + 2:
                order = sorted(rs, key=lambda r: hashlib.sha256(f"{th['seed']}:{r['source_path']}".encode()).hexdigest())
                probes = {r["source_path"] for r in order[:p]}
            elif p > 0:
                skipped.append(iid)
        for n, r in enumerate(rs):
            r["identity_id"], r["split"], r["n"] = iid, split[f], n
            if r["source_path"] in probes:
                r["role"] = "probe"
                r["output_path"] = f"probes/{iid}_{n}.png"
                r["landmarks_path"] = f"probe_landmarks/{iid}_{n}.png.txt"
            else:
                r["role"] = "reference"
                r["output_path"] = f"images/{iid}/{n}.png"
                r["landmarks_path"] = f"landmarks/{iid}/{n}.png.txt"
        merged = sorted({r["identity_folder"] for r in rs} - {f})
        identities.append({"identity_id": iid, "folder_name": f, "count": len(rs), "n_references": len(rs) - len(probes),
                           "n_probes": len(probes), "split": split[f], "merged_folders": ";".join(merged)})
    for r in records:
        if r["decision"] != "accepted" and r["assigned_folder"] in ids:
            r["identity_id"] = ids[r["assigned_folder"]]
    cents = {ids[f]: result["centroids"][f] for f in folders if f in result["centroids"]}
    return {"identities": identities, "ids": ids, "centroids_by_id": cents, "skipped_probes": skipped}
