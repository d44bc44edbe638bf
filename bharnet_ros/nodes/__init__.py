"""rclpy nodes: thin translation between ROS messages/parameters/timers and the core."""
