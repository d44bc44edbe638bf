"""Middleware settings applied before rclpy starts, so every entry point behaves the same."""

from __future__ import annotations

import os

from bharnet_ros.core.paths import share_file

FASTDDS_PROFILE_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"


def use_default_dds_profile(environ: dict[str, str] | None = None) -> str | None:
    """Point Fast DDS at the shipped profile (large shared-memory segment) unless the user chose one.

    Must run before ``rclpy.init``. Returns the profile in effect, or None if none is available.
    """
    environ = os.environ if environ is None else environ
    if FASTDDS_PROFILE_VAR not in environ:
        try:
            environ[FASTDDS_PROFILE_VAR] = str(share_file("config/fastdds.xml"))
        except FileNotFoundError:
            return None
    return environ[FASTDDS_PROFILE_VAR]
