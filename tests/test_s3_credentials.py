"""S3 keys from the variables shipbot.yml names: the environment first, else a file of that
name in the secrets folder (how Kubernetes and Swarm mount secrets), else a clear error."""

from __future__ import annotations

import pytest

from core.data.s3 import S3Error, S3Store, credential
from tests.moto_s3 import s3_config


def test_the_environment_comes_first_then_the_secrets_folder(tmp_path):
    (tmp_path / "S3_KEY").write_text("from-file\n")
    env = {"SHIPBOT_SECRETS_DIR": str(tmp_path)}
    assert credential("S3_KEY", {**env, "S3_KEY": "from-env"}) == "from-env"
    assert credential("S3_KEY", env) == "from-file"
    assert credential("OTHER", env) is None
    (tmp_path / "EMPTY").write_text("\n")
    assert credential("EMPTY", env) is None


def test_a_store_opens_with_keys_mounted_as_files_and_names_them_when_missing(tmp_path):
    config = s3_config("http://127.0.0.1:9", "bucket")
    env = {"SHIPBOT_SECRETS_DIR": str(tmp_path)}
    with pytest.raises(S3Error) as missing:
        S3Store(config, env)
    assert str(missing.value) == "no S3 credentials: set TEST_S3_ACCESS and TEST_S3_SECRET"
    (tmp_path / "TEST_S3_ACCESS").write_text("access\n")
    (tmp_path / "TEST_S3_SECRET").write_text("secret\n")
    store = S3Store(config, env)
    assert store.client._request_signer._credentials.access_key == "access"
    assert store.client._request_signer._credentials.secret_key == "secret"
