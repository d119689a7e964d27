"""A real deadlock between the GIL and a pthread mutex, which records its
owner: thread B locks a mutex (ctypes.CDLL drops the GIL during the call),
then the main thread, holding the GIL, locks the same mutex through
ctypes.PyDLL (which keeps the GIL) and blocks; B, back from a sleep, waits
for the GIL. Prints {"holder": main tid, "owner": B tid} and hangs."""
import ctypes
import json
import sys
import threading
import time

libc = ctypes.CDLL(None)
pylibc = ctypes.PyDLL(None)
mutex = ctypes.create_string_buffer(64)  # zeroes: PTHREAD_MUTEX_INITIALIZER
locked = threading.Event()
tids = {}


def owner():
    tids["owner"] = threading.get_native_id()
    libc.pthread_mutex_lock(mutex)
    locked.set()
    time.sleep(0.5)  # the main thread takes the GIL and blocks meanwhile
    while True:
        pass


threading.Thread(target=owner, name="mutex-owner", daemon=True).start()
locked.wait()
tids["holder"] = threading.get_native_id()
sys.stdout.write(json.dumps(tids) + "\n")
sys.stdout.flush()
pylibc.pthread_mutex_lock(mutex)
