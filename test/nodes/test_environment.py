"""The DDS profile each Fast DDS reads: the variable of the sourced distribution, never over the user's."""

from __future__ import annotations

import pytest

from bharnet_ros.nodes.environment import (
    FASTDDS_PROFILE_VAR,
    FASTRTPS_PROFILE_VAR,
    domain_id_problem,
    use_default_dds_profile,
)


@pytest.mark.parametrize(
    ("distro", "variable"),
    [
        ("jazzy", FASTRTPS_PROFILE_VAR),
        ("humble", FASTRTPS_PROFILE_VAR),
        ("kilted", FASTDDS_PROFILE_VAR),
        (None, FASTDDS_PROFILE_VAR),
    ],
)
def test_the_shipped_profile_goes_where_that_fast_dds_reads_it(distro, variable):
    environ = {} if distro is None else {"ROS_DISTRO": distro}
    profile = use_default_dds_profile(environ)
    assert profile.endswith("fastdds.xml")
    assert environ[variable] == profile
    other = FASTDDS_PROFILE_VAR if variable == FASTRTPS_PROFILE_VAR else FASTRTPS_PROFILE_VAR
    assert other not in environ  # Fast DDS 3 warns about the old name


@pytest.mark.parametrize("variable", [FASTDDS_PROFILE_VAR, FASTRTPS_PROFILE_VAR])
def test_a_profile_the_user_chose_is_kept(variable):
    environ = {"ROS_DISTRO": "jazzy", variable: "/etc/mine.xml"}
    assert use_default_dds_profile(environ) == "/etc/mine.xml"
    assert environ == {"ROS_DISTRO": "jazzy", variable: "/etc/mine.xml"}


@pytest.mark.parametrize(
    ("value", "usable"),
    [("", True), ("0", True), (" 42 ", True), ("232", True), ("233", False), ("abc", False),
     ("-1", False), ("\u0661", False), ("9" * 5000, False)],
)  # fmt: skip
def test_a_domain_id_rcl_or_fast_dds_would_refuse_is_named(value, usable):
    """ROS_DOMAIN_ID=abc made bharnet run and teach record end in an RCLError traceback."""
    problem = domain_id_problem({"ROS_DOMAIN_ID": value})
    assert (problem == "") == usable
    if not usable:
        assert "is not a ROS domain id; set a whole number from 0 to 232, or unset it" in problem
