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


# ---------------------------------------------------------------------------------------------
# Without a server: passwords never stored, an unreachable server fails fast or (optional) warns.
# ---------------------------------------------------------------------------------------------

SECRET = "hunter2"


@pytest.mark.parametrize("url,redacted", [
    ("mongodb://alice:hunter2@db.example:27017/runs?authSource=admin",
     "mongodb://alice:***@db.example:27017/runs?authSource=admin"),
    ("mongodb+srv://bob:p%40ss@cluster0.x.net", "mongodb+srv://bob:***@cluster0.x.net"),
    ("mongodb://u:a@b@h1:1,h2:2/db", "mongodb://u:***@h1:1,h2:2/db"),
    ("mongodb://carol@h:27017", "mongodb://carol@h:27017"),
    ("mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017"),
    (None, None),
])
def test_redact_url(url, redacted):
    from utils.mongo import redact_url

    assert redact_url(url) == redacted


def _dead_url() -> str:
    """A URL with a password for a local port where nothing listens."""
    return f"mongodb://bob:{SECRET}@127.0.0.1:{_free_port()}/?authSource=admin"


def test_client_gives_up_within_the_configured_seconds():
    """The client waits at most MONGO_TIMEOUT_S (<= 5 s) for a server, not pymongo's 30 s."""
    pytest.importorskip("pymongo", reason="pip install pymongo==4.20.0")
    from utils.mongo import MONGO_TIMEOUT_S, mongo_client

    assert MONGO_TIMEOUT_S <= 5
    client = mongo_client(_dead_url())
    try:
        assert client.options.server_selection_timeout == MONGO_TIMEOUT_S
        assert client.options.pool_options.connect_timeout == MONGO_TIMEOUT_S
    finally:
        client.close()


def test_unreachable_server_is_one_error_without_the_password():
    pytest.importorskip("pymongo", reason="pip install pymongo==4.20.0")
    import logging

    from utils.mongo import MongoUnavailableError, mongo_observer

    with pytest.raises(MongoUnavailableError, match=r"MongoDB at mongodb://bob:\*\*\*@127.0.0.1:\d+/.* did not "
                                                    r"answer within 0.3 s .* mongo_optional=True") as err:
        mongo_observer(_dead_url(), "db", optional=False, console=logging.getLogger("t"), timeout_s=0.3)
    assert SECRET not in str(err.value) and "\n" not in str(err.value)


def test_bad_uri_is_a_clear_error_without_the_password():
    pytest.importorskip("pymongo", reason="pip install pymongo==4.20.0")
    from utils.mongo import mongo_client

    with pytest.raises(ValueError,
                       match=r"mongo_url='mongodb://bob:\*\*\*@h:notaport' is not a usable MongoDB URI") as err:
        mongo_client(f"mongodb://bob:{SECRET}@h:notaport")
    assert SECRET not in str(err.value)


def test_optional_mongo_warns_and_the_file_record_has_no_password(tmp_path, monkeypatch, capsys):
    """main.make_experiment with mongo_optional=True and a dead server: a warning, only the file
    observer, and neither config.json nor the captured output holds the password."""
    pytest.importorskip("pymongo", reason="pip install pymongo==4.20.0")
    import json

    import main as entry
    import utils.mongo
    from utils.config import build_config

    monkeypatch.setattr(entry, "mongo_observer", lambda *a, **k: utils.mongo.mongo_observer(*a, **k, timeout_s=0.3))
    config = entry.finalize_config(build_config("qmix", "smax", [
        f"mongo_url={_dead_url()}", "mongo_optional=True", f"local_results_path={tmp_path}", "device=cpu"]))
    ex = entry.make_experiment(config)
    assert [type(o).__name__ for o in ex.observers] == ["FileStorageObserver"]
    warning = capsys.readouterr().err
    assert "did not answer" in warning and "file record only" in warning and SECRET not in warning

    @ex.main
    def body(_config):
        print("mongo_url seen by the run:", _config["mongo_url"])

    ex.run()
    run_dir = ex.observers[0].dir
    stored = json.load(open(os.path.join(run_dir, "config.json")))
    assert stored["mongo_url"].startswith("mongodb://bob:***@127.0.0.1:")
    for name in os.listdir(run_dir):
        assert SECRET not in open(os.path.join(run_dir, name)).read(), name


def test_main_stops_at_start_for_a_dead_server(tmp_path, monkeypatch, capsys):
    """Without mongo_optional: exit code 2, one error line, no sacred folder, no password."""
    pytest.importorskip("pymongo", reason="pip install pymongo==4.20.0")
    import main as entry
    import utils.mongo

    monkeypatch.setattr(entry, "mongo_observer", lambda *a, **k: utils.mongo.mongo_observer(*a, **k, timeout_s=0.3))
    code = entry.main(["--config=qmix", "--env-config=smax", "with", f"mongo_url={_dead_url()}",
                       f"local_results_path={tmp_path}", "device=cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: MongoDB at mongodb://bob:***@") and err.count("\n") == 1 and SECRET not in err
    assert not (tmp_path / "sacred").exists()
