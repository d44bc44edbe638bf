"""Print the pinned set of installed distributions for requirements.lock.

The ROS wheels also carry egg-info metadata of the Python packages inside them (action_msgs, ...),
which pip lists but no index serves, so only real wheel installs (dist-info) are kept.
"""

import importlib.metadata

SKIP = {"bharnet-ros", "pip"}

# A local label (torch's +cpu) is left out: PyPI serves no such file, and ==2.13.0 still takes a
# 2.13.0+cpu wheel where one is at hand (PEP 440 ignores the label, and it sorts first).
pins = {
    f"{dist.metadata['Name']}=={dist.version.split('+')[0]}"
    for dist in importlib.metadata.distributions()
    if dist._path.suffix == ".dist-info" and dist.metadata["Name"] not in SKIP
}
print("# Every package of the .venv, pinned. Regenerate with `make lock`; choices are in requirements.txt.")
print("\n".join(sorted(pins, key=str.lower)))
