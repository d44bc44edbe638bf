"""Joint layouts: trees, bone pairs and the MediaPipe 33 -> NTU 25 mapping."""

import numpy as np
import pytest

from bharnet_ros.core.layouts import HAND21, LAYOUTS, MP33, NTU25, get_layout, mp33_to_ntu25


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=lambda layout: layout.name)
def test_every_layout_is_a_single_tree(layout):
    assert len(layout.edges) == layout.num_joints - 1
    for joint in range(layout.num_joints):  # walking up the parents always reaches the root
        seen = set()
        while joint != layout.root:
            assert joint not in seen
            seen.add(joint)
            joint = layout.parents[joint]


def test_known_sizes_roots_and_bones():
    assert (NTU25.num_joints, NTU25.joint_names[NTU25.root]) == (25, "spine_shoulder")
    assert (MP33.num_joints, MP33.joint_names[MP33.root]) == (33, "nose")
    assert (HAND21.num_joints, len(HAND21.edges)) == (21, 20)
    assert HAND21.bone_pairs[0] == (0, 0)
    assert (NTU25.index("left_hand_tip"), NTU25.parents[NTU25.index("left_hand_tip")]) == (21, 22)
    # every finger starts at the wrist: no palm loop
    assert [HAND21.parents[j] for j in (1, 5, 9, 13, 17)] == [0] * 5


def test_unknown_layout_names_the_known_ones():
    with pytest.raises(ValueError, match="ntu25"):
        get_layout("coco17")


def mp_body() -> np.ndarray:
    body = np.zeros((33, 4), np.float32)
    body[:, 3] = 1.0
    for name, xy in {
        "left_shoulder": (0.6, 0.4), "right_shoulder": (0.4, 0.4), "left_hip": (0.58, 0.7),
        "right_hip": (0.42, 0.7), "left_ear": (0.53, 0.2), "right_ear": (0.47, 0.2),
        "left_wrist": (0.7, 0.6), "right_wrist": (0.3, 0.6),
    }.items():  # fmt: skip
        body[MP33.index(name), :2] = xy
    return body


def test_mapping_derives_spine_and_neck():
    ntu = mp33_to_ntu25(mp_body())
    np.testing.assert_allclose(ntu[NTU25.index("spine_base"), :2], (0.5, 0.7))
    np.testing.assert_allclose(ntu[NTU25.index("spine_shoulder"), :2], (0.5, 0.4))
    np.testing.assert_allclose(ntu[NTU25.index("spine_mid"), :2], (0.5, 0.55))
    np.testing.assert_allclose(ntu[NTU25.index("neck"), :2], (0.5, 0.4 - 0.35 * 0.2), atol=1e-6)
    np.testing.assert_allclose(ntu[NTU25.index("left_wrist"), :2], (0.7, 0.6))


def test_derived_joint_is_as_reliable_as_its_worst_source():
    body = mp_body()
    body[MP33.index("left_hip"), 3] = 0.2
    assert mp33_to_ntu25(body)[NTU25.index("spine_base"), 3] == pytest.approx(0.2)


def test_detected_hand_replaces_the_coarse_hand_joints_only_where_present():
    body = mp_body()
    hands = np.zeros((2, 21, 4), np.float32)
    hands[0, :, :2] = (0.75, 0.65)
    hands[0, :, 3] = 0.9
    ntu = mp33_to_ntu25(body, hands, np.array([True, False]))
    np.testing.assert_allclose(ntu[NTU25.index("left_hand_tip"), :2], (0.75, 0.65))
    assert ntu[NTU25.index("left_thumb"), 3] == pytest.approx(0.9)
    np.testing.assert_allclose(ntu[NTU25.index("right_hand_tip")], mp33_to_ntu25(body)[23])


def test_mapping_works_on_sequences_and_rejects_other_shapes():
    assert mp33_to_ntu25(np.zeros((7, 33, 4))).shape == (7, 25, 4)
    with pytest.raises(ValueError, match="33, 4"):
        mp33_to_ntu25(np.zeros((25, 4)))
