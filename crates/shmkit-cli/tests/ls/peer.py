# A process that uses IPC objects so that `shmkit ls` has users to show: it attaches a
# System V segment, maps a POSIX object, holds a memfd and a POSIX message queue open,
# prints "ready PID", and holds everything until its stdin closes.
# Usage: peer.py SHMID POSIX_NAME MQ_NAME
import ctypes, mmap, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
shmid = int(sys.argv[1])
if libc.shmat(shmid, None, 0) in (None, ctypes.c_void_p(-1).value):
    sys.exit("shmat failed: errno %d" % ctypes.get_errno())
fd = os.open("/dev/shm/" + sys.argv[2], os.O_RDWR)
m = mmap.mmap(fd, 4096)
mfd = os.memfd_create("shmkit_test_memfd")
os.ftruncate(mfd, 8192)
libc.mq_open.restype = ctypes.c_int
libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
q = libc.mq_open(("/" + sys.argv[3]).encode(), os.O_RDONLY)
if q < 0:
    sys.exit("mq_open failed: errno %d" % ctypes.get_errno())
print("ready", os.getpid(), flush=True)
sys.stdin.read()
