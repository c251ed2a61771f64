#!/bin/bash
# As in the official ros images: source the distro, then run the command.
set -e
# shellcheck disable=SC1090
source "/opt/ros/$ROS_DISTRO/setup.bash" --
exec "$@"
