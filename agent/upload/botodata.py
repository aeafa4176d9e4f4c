"""botocore's model data, lean: what the agent's S3 client needs, loaded as plain dicts, without the
other services' endpoints and without documentation strings (agent.upload.s3 makes its session so).

botocore parses every model file into OrderedDicts and keeps them for the life of the process:
endpoints.json alone is about 6.7 MB of them, of which S3's entries are 0.1 MB; the S3 service model
is 3.2 MB, 1.2 MB of it documentation that only docstrings and help pages read. Together with plain
dicts (ordered since Python 3.7) this saves about 9 MB of a unit's memory; endpoint resolution and
every operation are unchanged (tests/upload/test_botodata.py).
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

import botocore.loaders
import botocore.session

KEEP_SERVICES = frozenset({"s3"})  # the only service the agent calls
_OPENERS = ((".json", open), (".json.gz", gzip.open))  # as botocore's JSONFileLoader looks for them


def _strip_documentation(node: Any) -> Any:
    """Documentation strings emptied (the keys stay: botocore reads some of them directly)."""
    if isinstance(node, dict):
        return {k: "" if k == "documentation" and isinstance(v, str) else _strip_documentation(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_strip_documentation(v) for v in node]
    return node


def lean(name: str, data: Any) -> Any:
    """One loaded model file, trimmed by its name (`endpoints`, `service-2`, ...)."""
    if name == "endpoints" and isinstance(data, dict):
        return {**data, "partitions": [
            {**p, "services": {k: v for k, v in p.get("services", {}).items() if k in KEEP_SERVICES}}
            for p in data.get("partitions", [])]}
    if name == "service-2":
        return _strip_documentation(data)
    return data


class LeanFileLoader(botocore.loaders.JSONFileLoader):
    """botocore's JSON file loader, returning plain dicts trimmed by `lean`."""

    def load_file(self, file_path: str) -> Any:
        for ext, opener in _OPENERS:
            path = file_path + ext
            if os.path.isfile(path):
                with opener(path, "rb") as fp:
                    data = json.loads(fp.read().decode("utf-8"))
                return lean(os.path.basename(file_path), data)
        return None


def lean_session() -> botocore.session.Session:
    """A new botocore session whose data loader is lean (AWS_DATA_PATH still honoured)."""
    session = botocore.session.get_session()
    data_path = session.get_config_variable("data_path")
    extra = ([os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
             if data_path else None)
    loader = botocore.loaders.Loader(extra_search_paths=extra, file_loader=LeanFileLoader())
    session.register_component("data_loader", loader)
    return session
