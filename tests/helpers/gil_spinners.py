"""Threads contending for the GIL in pure Python: four threads (the main
one included) spin in a Python loop, so at any instant one holds the GIL
and the others wait to take it back (the eval loop's drop request, not a
blocking call). Prints the spinners' native thread ids as one JSON list,
then spins until killed."""
import json
import threading


def spin():
    x = 0
    while True:
        x += 1


threads = [threading.Thread(target=spin, daemon=True) for _ in range(3)]
for t in threads:
    t.start()
print(json.dumps([threading.get_native_id()] + [t.native_id for t in threads]),
      flush=True)
spin()
