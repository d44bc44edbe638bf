"""Joint layouts: trees, bone pairs and the MediaPipe 33 -> NTU 25 mapping."""

import numpy as np
import pytest

from bharnet_ros.core.layouts import (
    HAND21,
    LAYOUTS,
    MP33,
    NTU25,
    SkeletonLayout,
    get_layout,
    mirror_permutation,
    mp33_to_ntu25,
)


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


def test_hands_without_their_flags_are_refused_by_name():
    with pytest.raises(ValueError, match="hands need their hand_present flags"):
        mp33_to_ntu25(mp_body(), np.zeros((2, 21, 4), np.float32))


def test_derived_joint_is_as_reliable_as_its_worst_source():
    body = mp_body()
    body[MP33.index("left_hip"), 3] = 0.2
    assert mp33_to_ntu25(body)[NTU25.index("spine_base"), 3] == pytest.approx(0.2)
    body[MP33.index("left_hip")] = 0.0  # not seen at all: the derived joint is absent too
    assert not mp33_to_ntu25(body)[NTU25.index("spine_base")].any()
    assert mp33_to_ntu25(body)[NTU25.index("spine_shoulder")].any()  # its sources were seen
    assert not mp33_to_ntu25(body)[NTU25.index("spine_mid")].any()  # half-way to an absent joint
    body = mp_body()
    body[[MP33.index("left_ear"), MP33.index("right_ear")]] = 0.0
    assert not mp33_to_ntu25(body)[NTU25.index("head")].any()
    assert not mp33_to_ntu25(body)[NTU25.index("neck")].any()


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


# The mapping written out joint by joint (x, y, z, score), as docs/skeleton_contract.md states it.
NTU_FROM_MP = {
    "spine_base": ("left_hip", "right_hip"), "head": ("left_ear", "right_ear"),
    "left_shoulder": ("left_shoulder",), "left_elbow": ("left_elbow",), "left_wrist": ("left_wrist",),
    "left_hand": ("left_wrist", "left_pinky", "left_index"), "right_shoulder": ("right_shoulder",),
    "right_elbow": ("right_elbow",), "right_wrist": ("right_wrist",),
    "right_hand": ("right_wrist", "right_pinky", "right_index"), "left_hip": ("left_hip",),
    "left_knee": ("left_knee",), "left_ankle": ("left_ankle",), "left_foot": ("left_foot_index",),
    "right_hip": ("right_hip",), "right_knee": ("right_knee",), "right_ankle": ("right_ankle",),
    "right_foot": ("right_foot_index",), "spine_shoulder": ("left_shoulder", "right_shoulder"),
    "left_hand_tip": ("left_index",), "left_thumb": ("left_thumb",), "right_hand_tip": ("right_index",),
    "right_thumb": ("right_thumb",),
}  # fmt: skip


def distinct_body(seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    body = rng.uniform(-1.0, 1.0, (33, 4)).astype(np.float32)
    body[:, 3] = rng.uniform(0.3, 1.0, 33)
    return body


def test_every_ntu_joint_comes_from_its_mediapipe_joints_in_all_four_channels():
    body = distinct_body()
    ntu = mp33_to_ntu25(body)
    for name, sources in NTU_FROM_MP.items():
        points = body[[MP33.index(s) for s in sources]]
        expected = np.append(points[:, :3].mean(axis=0), points[:, 3].min())
        np.testing.assert_allclose(ntu[NTU25.index(name)], expected, rtol=1e-6, err_msg=name)
    top, base, head = (ntu[NTU25.index(n)] for n in ("spine_shoulder", "spine_base", "head"))
    np.testing.assert_allclose(ntu[NTU25.index("spine_mid"), :3], 0.5 * (base[:3] + top[:3]), rtol=1e-6)
    neck = top[:3] + 0.35 * (head[:3] - top[:3])
    np.testing.assert_allclose(ntu[NTU25.index("neck"), :3], neck, rtol=1e-6)


def test_a_detected_hand_adds_its_relative_depth_to_the_wrists_depth():
    body = distinct_body()
    rng = np.random.default_rng(5)
    hands = rng.uniform(-0.2, 0.2, (2, 21, 4)).astype(np.float32)
    hands[..., 3] = 0.9
    ntu = mp33_to_ntu25(body, hands, np.array([True, True]))
    for slot, side in enumerate(("left", "right")):
        wrist_z = body[MP33.index(f"{side}_wrist"), 2]
        tip = hands[slot, HAND21.index("middle_tip")]
        np.testing.assert_allclose(ntu[NTU25.index(f"{side}_hand_tip"), :2], tip[:2], rtol=1e-6)
        np.testing.assert_allclose(ntu[NTU25.index(f"{side}_hand_tip"), 2], tip[2] + wrist_z, rtol=1e-6)
        thumb = hands[slot, HAND21.index("thumb_tip")]
        np.testing.assert_allclose(ntu[NTU25.index(f"{side}_thumb"), 2], thumb[2] + wrist_z, rtol=1e-6)
        palm = hands[
            slot, [HAND21.index(n) for n in ("wrist", "index_mcp", "middle_mcp", "ring_mcp", "pinky_mcp")]
        ]
        np.testing.assert_allclose(
            ntu[NTU25.index(f"{side}_hand"), 2], palm[:, 2].mean() + wrist_z, rtol=1e-5
        )


def test_mapped_sequences_keep_per_frame_scores_and_float32():
    """Each frame's derived joints take that frame's worst source score, spine and neck included."""
    body = np.stack([mp_body(), mp_body()]).astype(np.float64)
    body[..., 3] = 1.0
    body[0, MP33.index("left_hip"), 3] = 0.2
    body[1, MP33.index("right_shoulder"), 3] = 0.4
    ntu = mp33_to_ntu25(body)
    assert ntu.dtype == np.float32
    assert ntu[:, NTU25.index("spine_base"), 3] == pytest.approx([0.2, 1.0])
    assert ntu[:, NTU25.index("spine_shoulder"), 3] == pytest.approx([1.0, 0.4])
    assert ntu[:, NTU25.index("spine_mid"), 3] == pytest.approx([0.2, 0.4])  # blended: min of both ends
    assert ntu[:, NTU25.index("neck"), 3] == pytest.approx([1.0, 0.4])
    assert mp33_to_ntu25(body, np.zeros((2, 2, 21, 4)), np.zeros((2, 2), bool)).dtype == np.float32


def test_a_layout_needs_a_parent_per_joint_and_one_root():
    chain = SkeletonLayout("chain", ("a", "b", "c"), (0, 0, 1))
    assert (chain.root, chain.edges) == (0, ((1, 0), (2, 1)))
    with pytest.raises(ValueError, match=r"layout bad: 3 names, 2 parents"):
        SkeletonLayout("bad", ("a", "b", "c"), (0, 0))
    with pytest.raises(ValueError, match=r"layout bad: expected one root, found \[0, 1\]"):
        SkeletonLayout("bad", ("a", "b", "c"), (0, 1, 1))
    with pytest.raises(ValueError, match=r"expected one root, found \[\]"):
        SkeletonLayout("bad", ("a", "b"), (1, 0))


def test_mirror_permutation_swaps_sides_by_name():
    perm = mirror_permutation("mediapipe33")
    names = MP33.joint_names
    assert names[perm[MP33.index("left_wrist")]] == "right_wrist"
    assert names[perm[MP33.index("mouth_right")]] == "mouth_left"
    assert perm[MP33.index("nose")] == MP33.index("nose")
    assert np.array_equal(perm[perm], np.arange(len(names)))
    ntu = mirror_permutation("ntu25")
    assert NTU25.joint_names[ntu[NTU25.index("left_hand_tip")]] == "right_hand_tip"
    assert ntu[NTU25.index("spine_mid")] == NTU25.index("spine_mid")


@pytest.mark.parametrize("layout", [NTU25, MP33], ids=lambda layout: layout.name)
def test_each_tree_is_its_own_mirror_image(layout):
    """Mirroring swaps left and right joints; the bones (joint minus parent) of a mirrored skeleton
    are the mirrored bones only if each joint's mirror hangs off its parent's mirror."""
    perm = mirror_permutation(layout.name)
    parents = np.array(layout.parents)
    assert np.array_equal(parents[perm], perm[parents])
