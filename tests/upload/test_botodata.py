"""The lean botocore data (agent/upload/botodata.py): the same S3 endpoints and requests as stock
botocore, from a fraction of the memory. Real botocore and boto3; nothing is sent."""

from __future__ import annotations

import gc
import tracemalloc
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config as BotoConfig

from agent.upload.botodata import lean_session
from tests.fresh import fresh_python

KEYS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}


def _client(lean: bool, region: str, **config):
    kw = {"botocore_session": lean_session()} if lean else {}
    session = boto3.session.Session(region_name=region, **KEYS, **kw)
    return session.client("s3", config=BotoConfig(**config))


@pytest.mark.parametrize("region,config", [
    ("eu-west-2", {}),
    ("us-east-1", {"s3": {"addressing_style": "path"}}),
    ("eu-west-2", {"s3": {"addressing_style": "virtual"}, "use_dualstack_endpoint": True}),
    ("us-gov-west-1", {"use_fips_endpoint": True}),
    ("cn-north-1", {}),
    ("eu-central-1", {"s3": {"use_accelerate_endpoint": True}}),
])
def test_endpoints_and_signed_requests_match_stock_botocore(region: str, config: dict) -> None:
    stock, lean = _client(False, region, **config), _client(True, region, **config)
    assert lean.meta.endpoint_url == stock.meta.endpoint_url
    assert lean.meta.region_name == stock.meta.region_name
    for op, params in (("put_object", {"Bucket": "council-bucket", "Key": "units/u1/a.mp4"}),
                       ("upload_part", {"Bucket": "council-bucket", "Key": "k", "UploadId": "x",
                                        "PartNumber": 2})):
        a = urlsplit(stock.generate_presigned_url(op, Params=params))
        b = urlsplit(lean.generate_presigned_url(op, Params=params))
        assert (b.scheme, b.netloc, b.path) == (a.scheme, a.netloc, a.path)
        assert sorted(q.split("=")[0] for q in b.query.split("&")) == \
            sorted(q.split("=")[0] for q in a.query.split("&"))  # the same signature scheme


def test_the_lean_client_holds_a_fraction_of_the_memory() -> None:
    def traced(lean: bool) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            client = _client(lean, "eu-west-2")
            gc.collect()
            size = tracemalloc.get_traced_memory()[0]
            del client
            return size
        finally:
            tracemalloc.stop()

    stock, lean = traced(False), traced(True)
    assert lean < stock / 2, (lean, stock)  # about 3 MB against 12 MB


def test_only_s3_endpoints_and_no_documentation_are_kept() -> None:
    loader = lean_session().get_component("data_loader")
    endpoints = loader.load_data("endpoints")
    assert endpoints["partitions"] and all(set(p["services"]) <= {"s3"} for p in endpoints["partitions"])
    assert any("s3" in p["services"] for p in endpoints["partitions"])
    model = loader.load_service_model("s3", "service-2")
    assert type(model) is dict and model["operations"]["PutObject"]["documentation"] == ""


def test_the_agent_makes_its_client_without_boto3() -> None:
    """botocore alone: boto3 would add boto3, s3transfer and multiprocessing (about 2 MB)."""
    code = ("import sys; from agent.clock import SystemClock; from agent.config import parse_config; "
            "from agent.upload import s3; "
            "cfg = parse_config({'unit': {'id': 'u1'}, 'upload': {'bucket': 'b', 'region': 'eu-west-2', "
            "'access_key_id': 'a', 'secret_access_key': 's'}}, env={}); "
            "c = s3.make_client(cfg.upload, s3.ClockOffset(SystemClock())); "
            "print(c.meta.region_name, ' '.join(m for m in ('boto3', 's3transfer') if m in sys.modules))")
    out = fresh_python("-c", code)
    assert out.stdout.strip() == "eu-west-2"
