"""bharnet_ros: body+hand skeleton action recognition (BHaRNet) for ROS 2.

Subpackages: ``core`` (ROS-free runtime: skeleton contract, pose stage, windows, inference),
``model`` and ``training`` (torch, offline), ``nodes`` (rclpy), ``tools`` (the ``bharnet`` CLI).
The ROS messages generated from ``msg/`` live in ``bharnet_ros.msg``.
"""

from pkgutil import extend_path

# A source checkout on sys.path and the installed package (which holds the generated bharnet_ros.msg)
# form one package, so tests and tools run from the checkout see the messages too.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
