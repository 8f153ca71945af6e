"""The Python peer of the POSIX tests: the C peer's commands through
multiprocessing.shared_memory. Python 3.11's resource tracker would unlink every object
this process touched when it exits (attachments included), so each object is
unregistered from it at once."""
import sys
from multiprocessing import resource_tracker, shared_memory
cmd, name, arg = sys.argv[1:4]
create = cmd == "create"
shm = shared_memory.SharedMemory(name=name, create=create, size=4096 if create else 0)
resource_tracker.unregister(shm._name, "shared_memory")
if cmd in ("create", "write"):
    data = arg.encode() + b"\0"
    shm.buf[:len(data)] = data
elif cmd == "read":
    data = bytes(shm.buf[:int(arg)])
    sys.stdout.write(data.split(b"\0")[0].decode())
shm.close()
