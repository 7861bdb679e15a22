"""Constants shared by the pixport-aws cross-checks."""

from __future__ import annotations

import datetime

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
# 2024-05-01T12:00:00Z, as the crate gets it (Unix seconds) and as botocore does.
T0 = 1_714_564_800
T0_DT = datetime.datetime(2024, 5, 1, 12, 0, 0)


def creds_json(token: str | None = None) -> dict:
    return {"access_key_id": AKID, "secret_access_key": SECRET, "session_token": token}
