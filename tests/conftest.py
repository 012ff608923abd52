"""Suite-wide settings: the slow tests first, and OpenMP threads that do not spin.

Under `pytest -n auto --dist worksteal` the longest tests (Ray clusters, whole commands in
subprocesses) then start at once and the short ones fill the other workers around them, instead
of a long test starting last and running alone while every other worker idles.
"""

import os

# Idle OpenMP threads sleep instead of spinning. The test workers and the commands they start in
# subprocesses share the cores, each with torch's threads; a spinning thread held a core another
# process's parallel region was waiting for, so every tiny parallel op waited a scheduler slice:
# meta_acon's gradcheck took 16-22 s beside the GPU check's smoke run instead of 0.4 s, and the
# suite 184-199 s instead of 133 s on 2 cores. Set before torch is imported (OpenMP reads it once);
# the subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: files keep order
