"""Suite-wide collection order: the slow tests first.

Under `pytest -n auto --dist worksteal` the longest tests (Ray clusters, whole commands in
subprocesses) then start at once and the short ones fill the other workers around them, instead
of a long test starting last and running alone while every other worker idles.
"""


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: files keep order
