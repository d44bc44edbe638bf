"""The feature distance of a trained model, fitted to the data it was trained on.

``model/feature_distance.py`` says what the distance is. It is fitted on augmented windows of the
training data, as the model saw them in training, on BHaRNet-E's expertized branches (the ones its
expert-only export keeps, so that both exports of one checkpoint measure the same distance), or on
every branch of another variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.core.text_files import MOST_CONFIG_BYTES, read_text_file
from bharnet_ros.core.yaml12 import load_yaml
from bharnet_ros.model.bharnet import BHaRNetModel, ExpertizedModel
from bharnet_ros.model.checkpoint import Checkpoint
from bharnet_ros.model.feature_distance import FeatureDistance, distance_branches, fit_feature_distance
from bharnet_ros.training.data import name_list, training_data_in
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.teach import TEACH_AUGMENT, extract_features, load_rehearsal, twin_augment
from bharnet_ros.training.train import mirror_map

DISTANCE_VIEWS = 8  # augmented windows per training sample


def fit_distance(
    model: BHaRNetModel,
    data: SkeletonDataset,
    classes: Sequence[str],
    preprocess: PreprocessConfig,
    views: int = DISTANCE_VIEWS,
    progress: str | None = None,
    twins: Sequence[int] | None = None,
) -> FeatureDistance:
    """The distance of ``model`` (in eval mode) fitted on ``views`` augmented windows per sample of
    ``data``, whose classes must be among ``classes`` (the model's, in its order), each mirrored
    into its twin in ``classes`` as training mirrored it (-1: never; None: paired by their names;
    mirrored under its own label, a swipe_in that looks like swipe_out pulled the means together)."""
    if isinstance(model, ExpertizedModel):  # the same expertized features, without the attention
        model = model.expert_only().eval()
    augment = TEACH_AUGMENT if twins is None else twin_augment(TEACH_AUGMENT, classes, twins)
    features = extract_features(model, data, classes, preprocess, views, augment, progress=progress)
    return fit_feature_distance(
        {name: features.branches[name] for name in distance_branches(model.branches)}, features.labels
    )


def distance_from_config(
    model: BHaRNetModel, checkpoint: Checkpoint, config: str | Path, progress: str | None = None
) -> FeatureDistance:
    """The distance of ``model`` (``checkpoint``'s) fitted on the training data of a training config
    (its ``data.train`` as relabelled, without its left-out people). ValueError (a DatasetError
    among them) when the config is not a readable YAML mapping, or its data is not here or lacks
    one of the model's classes."""
    if not Path(config).exists():
        raise ValueError("no such file; give a training config, e.g. config/train/real_cpu.yaml")
    mapping = _config_mapping(config)
    source = training_data_in(mapping)
    if source.missing:
        raise ValueError(f"its training data is not here ({name_list([str(p) for p in source.missing], 5)})")
    if not source.files:
        raise ValueError("names no training data (data.train)")
    data = load_rehearsal(source)
    present = {name for name, count in zip(data.class_names, data.class_counts(), strict=True) if count}
    lacking = [name for name in checkpoint.class_names if name not in present]
    if lacking:  # a class without samples has no mean: its every window would lie far, so none
        shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
        raise ValueError(
            f"its data holds no sample of the model's {shown}, whose windows would then all read as "
            "unfamiliar; give the config the model was trained with (a taught model has its own distance)"
        )
    classes, preprocess = checkpoint.class_names, checkpoint.preprocess_config
    twins = _training_twins(mapping, classes)
    return fit_distance(model, data, classes, preprocess, progress=progress, twins=twins)


def _training_twins(config: dict, classes: Sequence[str]) -> list[int]:
    """Each class's twin as the config's training mirrored it (its ``augment.mirror_pairs`` and
    ``mirror_never``), as a --loso fold's distance is fitted: the checkpoint records them only where
    test-time mirroring is on."""
    try:
        return mirror_map({"augment": config.get("augment")}, classes).tolist()
    except (ValueError, TypeError) as err:
        raise ValueError(f"its augment section does not fit the model's classes ({str(err)[:160]})") from None


def _config_mapping(config: str | Path) -> dict:
    """The YAML mapping in ``config``; ValueError when it cannot be read or is not one."""
    try:
        section = load_yaml(read_text_file(config, MOST_CONFIG_BYTES))
    except OSError as err:
        raise ValueError(f"cannot be read: {err.strerror}") from None
    except (UnicodeDecodeError, yaml.YAMLError):
        section = None
    if not isinstance(section, dict):
        raise ValueError("is not a YAML training config; give one such as config/train/real_cpu.yaml")
    return section
