//! Enumerating the IPC objects on this machine: /proc/sysvipc, /dev/shm, /proc/*/maps.
