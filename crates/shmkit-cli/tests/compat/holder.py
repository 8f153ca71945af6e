# Attaches to and operates on System V objects so that ipcs has attach counts, "dest"
# segments, queued messages and semaphore pids to show; prints "ready", then holds
# everything until its stdin closes. Used by compare.sh inside a private IPC namespace.
import ctypes, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
IPC_RMID = 0
shm_ids = [int(x) for x in sys.argv[1].split(",")]
dest_id = int(sys.argv[2])
msq = int(sys.argv[3])
sem = int(sys.argv[4])
for i in shm_ids + [dest_id]:
    if libc.shmat(i, None, 0) in (None, ctypes.c_void_p(-1).value):
        sys.exit("shmat %d failed: errno %d" % (i, ctypes.get_errno()))
if libc.shmctl(dest_id, IPC_RMID, None) != 0:
    sys.exit("shmctl failed")

class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 100)]

m = Msg(1, b"hello")
if libc.msgsnd(msq, ctypes.byref(m), 100, 0) != 0:
    sys.exit("msgsnd failed")

class Sembuf(ctypes.Structure):
    _fields_ = [("num", ctypes.c_ushort), ("op", ctypes.c_short), ("flg", ctypes.c_short)]

ops = (Sembuf * 1)(Sembuf(1, 5, 0))
if libc.semop(sem, ops, 1) != 0:
    sys.exit("semop failed")
print("ready", flush=True)
sys.stdin.read()
