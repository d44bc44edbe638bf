"""bharnet_ros: body+hand skeleton action recognition (BHaRNet) for ROS 2.

Subpackages: ``core`` (ROS-free runtime: skeleton contract, pose stage, windows, inference),
``model`` and ``training`` (torch, offline), ``nodes`` (rclpy), ``tools`` (the ``bharnet`` CLI).
The ROS messages generated from ``msg/`` live in ``bharnet_ros.msg``.
"""

__version__ = "0.1.0"
