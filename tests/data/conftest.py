"""Fixtures for the data tests: a real S3 API (moto's server) on 127.0.0.1 and small datasets."""

from __future__ import annotations

import socket
import uuid

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server, over HTTP on a free local port, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server):
    """storage_options for a fresh bucket; credentials travel in the options, so worker
    processes (which never see this test's environment) reach the same server."""
    import boto3
    import s3fs

    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3_server, "region_name": "us-east-1"},
    }
    bucket = f"mlkit-{uuid.uuid4().hex[:10]}"
    boto3.client(
        "s3", endpoint_url=s3_server, aws_access_key_id="testing",
        aws_secret_access_key="testing", region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    fs = s3fs.S3FileSystem(**options)
    return {"bucket": bucket, "options": options, "fs": fs}


@pytest.fixture
def small(tmp_path, cluster):
    """A small synthetic dataset with categories and missing values (3 files)."""
    import mlkit

    return mlkit.data.synthetic(
        str(tmp_path / "small"), rows=3000, features=4, categorical=2, missing=0.05,
        partitions=3, seed=7,
    )
