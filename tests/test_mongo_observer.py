"""Sacred's MongoObserver against a real, throw-away ``mongod`` on 127.0.0.1 (what
``with mongo_url=mongodb://... mongo_db=...`` uses in src/main.py).

Skipped where no ``mongod`` binary exists: Debian 12 (bookworm) packages no MongoDB server
(`apt-cache policy mongodb-server` has no candidate) and MongoDB's own builds are a separate
download. Point ``MONGOD`` at a binary (or put one on PATH) to run it.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

SKIP_REASON = ("mongod not installed; Debian 12 has no MongoDB server package (apt-cache policy "
               "mongodb-server: no candidate) and MongoDB's own builds cannot be downloaded here. "
               "Set MONGOD=/path/to/mongod to run this test.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mongo_url(tmp_path):
    exe = os.environ.get("MONGOD") or shutil.which("mongod")
    if not exe:
        pytest.skip(SKIP_REASON)
    pymongo = pytest.importorskip("pymongo", reason="pip install pymongo==4.20.0")
    port = _free_port()
    dbpath = tmp_path / "db"
    dbpath.mkdir()
    log = open(tmp_path / "mongod.log", "w")
    proc = subprocess.Popen([exe, "--dbpath", str(dbpath), "--port", str(port), "--bind_ip", "127.0.0.1",
                             "--nounixsocket"], stdout=log, stderr=subprocess.STDOUT)
    url = f"mongodb://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mongod exited with {proc.returncode}; see {tmp_path / 'mongod.log'}")
            try:
                pymongo.MongoClient(url, serverSelectionTimeoutMS=500).admin.command("ping")
                break
            except pymongo.errors.PyMongoError:
                if time.monotonic() > deadline:
                    pytest.fail("mongod did not accept connections within 30 s")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_run_lands_in_mongodb(mongo_url):
    import pymongo
    from sacred import Experiment
    from sacred.observers import MongoObserver

    ex = Experiment("mongo_smoke", save_git_info=False)
    ex.add_config({"lr": 0.5, "env_args": {"map_name": "3m"}})
    ex.observers.append(MongoObserver(url=mongo_url, db_name="spikemarl_test"))

    @ex.main
    def run(_run, lr):
        _run.log_scalar("test_battle_won_mean", 0.25, 100)
        _run.info["note"] = "hello"
        return lr * 2

    result = ex.run()
    assert result.result == 1.0

    db = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000)["spikemarl_test"]
    doc = db.runs.find_one({"_id": result._id})
    assert doc is not None, "the run is not in the runs collection"
    assert doc["status"] == "COMPLETED" and doc["experiment"]["name"] == "mongo_smoke"
    assert doc["config"]["lr"] == 0.5 and doc["config"]["env_args"]["map_name"] == "3m"
    assert doc["result"] == 1.0 and doc["info"]["note"] == "hello"
    metric = db.metrics.find_one({"run_id": result._id, "name": "test_battle_won_mean"})
    assert metric is not None and metric["values"] == [0.25] and metric["steps"] == [100]
