"""Procedurally generated body+hand gesture sequences for human-robot interaction.

The generator builds a standing person from a few kinematic pieces and films them with a pinhole
camera, so that its output is exactly what the live pose stage emits: a
:class:`~bharnet_ros.core.skeleton.SkeletonSequence` in layout ``mediapipe33`` and space ``image``
(x = u/width, y = v/height, y down; body z is depth relative to the hip centre in x's scale, hand z is
depth relative to the hand's wrist, negative = towards the camera; hand slot 0 = the subject's left).

Pipeline of one sequence, one module per step:

1. a :class:`~.kinematics.Subject` (body proportions, handedness, rest posture) and a
   :class:`~.observation.Camera` (image size, focal length, distance, yaw, framing) are drawn;
2. the class's motion (:mod:`.gestures`) is keyframed as *arm poses* (wrist position relative to the
   shoulder, elbow direction, hand orientation, hand shape) and interpolated smoothly
   (:mod:`.geometry`); repetitive parts (waving, clapping, beckoning) are added as oscillations;
3. arms are solved with two-link inverse kinematics (:mod:`.kinematics`), hands are built from
   per-finger flexion (:mod:`.hands`), the body gets posture sway, and a left-handed performer is
   mirrored in 3D (so the active hand lands in slot 0);
4. the 3D skeleton is projected, and pose-estimator effects are added (:mod:`.observation`):
   visibility scores (frame edges, occlusion), temporally correlated jitter with spikes, and hand
   dropouts.

:mod:`.vocabulary` holds the classes and :mod:`.generate` the entry points re-exported here.

The classes in :data:`SHARED_ARM_CLASSES` draw their arm motion from one distribution with one random
stream, so for the same seed their shoulder, elbow and wrist trajectories are identical: only the hand
(shape and orientation) tells them apart. That is the situation BHaRNet's hand stream exists for.
"""

from bharnet_ros.training.synth.generate import (
    SynthSample,
    demo_sequence,
    generate_dataset,
    generate_sample,
    generate_scripted,
    generate_sequence,
    sample_seed,
)
from bharnet_ros.training.synth.observation import Camera, EstimatorStyle, hand_loss_rates
from bharnet_ros.training.synth.vocabulary import (
    CLASS_NAMES,
    CLASSES,
    HAND_INTENSIVE,
    SHARED_ARM_CLASSES,
    GestureClass,
    class_index,
)

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "HAND_INTENSIVE",
    "SHARED_ARM_CLASSES",
    "Camera",
    "EstimatorStyle",
    "GestureClass",
    "SynthSample",
    "class_index",
    "demo_sequence",
    "generate_dataset",
    "generate_sample",
    "generate_scripted",
    "generate_sequence",
    "hand_loss_rates",
    "sample_seed",
]
