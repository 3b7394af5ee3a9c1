from . import write_published

for path in write_published():
    print(f"wrote {path}")
