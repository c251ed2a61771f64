# shellcheck shell=bash
# /opt/ros/jazzy/setup.bash of the test image: the wheels' prefix (a venv) on PATH and the ament
# index path, as sourcing a ROS distro does.
export AMENT_PREFIX_PATH=/opt/ros/jazzy${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
export PATH=/opt/ros/jazzy/bin${PATH:+:$PATH}
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
