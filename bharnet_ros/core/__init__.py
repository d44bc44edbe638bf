"""ROS-free runtime core: numpy, OpenCV, MediaPipe and ONNX Runtime only (no rclpy, no torch)."""
