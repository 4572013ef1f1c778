"""Reading test sets: the one reader behind ``restore``, ``evaluate`` and ``degrade``.

* :mod:`.lq` — what restore/evaluate run on: DMDNet list files, folders of images, ``celebref degrade`` outputs
  and manifests, paired LQ/GT folders -> :class:`InputRecord` s (:func:`read_test_set`, :func:`load_test_set`).
* :mod:`.lists` — DMDNet's ``GenericLists.txt`` / ``SpecificLists.txt`` (encoding, format and path rules).
* :mod:`.hq` — the HQ images ``degrade`` starts from (build outputs, celebref-mini-like folders, dataset
  manifests, plain folders) -> :class:`HQItem` s (:func:`read_hq_set`).
* :mod:`.records` — the record types and the shared primitives (absolute paths, folder ids, tables).
"""

from .hq import read_hq_set
from .lists import LIST_FORMATS, ListEntry, ParsedList, parse_list
from .lq import TestSet, load_test_set, pair_folders, read_inputs, read_list, read_test_set, reference_files, reference_key
from .records import NOT_A_TEST_SET, HQItem, HQSet, InputRecord

__all__ = [
    "LIST_FORMATS", "NOT_A_TEST_SET", "HQItem", "HQSet", "InputRecord", "ListEntry", "ParsedList", "TestSet",
    "load_test_set", "pair_folders", "parse_list", "read_hq_set", "read_inputs", "read_list", "read_test_set",
    "reference_files", "reference_key",
]
