#!/usr/bin/python3
"""Outside reader of silver.events: the catalog row (psql), the metadata JSON
and the Avro manifest list and manifests (python3-avro), straight from the
versitygw posix directory. Prints the live data files of the current (or a
given) snapshot, one local path per line; summary on stderr."""
import json, subprocess, sys, os
from avro.datafile import DataFileReader
from avro.io import DatumReader
db, root = sys.argv[1], sys.argv[2]
snap_id = int(sys.argv[3]) if len(sys.argv) > 3 else None
loc = subprocess.check_output(["psql", db, "-Atc",
  "SELECT metadata_location FROM iceberg_tables WHERE table_namespace='silver' AND table_name='events'"]).decode().strip()
def local(uri): return os.path.join(root, uri[len("s3://"):])
meta = json.load(open(local(loc)))
sid = snap_id or meta["current-snapshot-id"]
snap = [s for s in meta["snapshots"] if s["snapshot-id"] == sid][0]
files = []
for m in DataFileReader(open(local(snap["manifest-list"]), "rb"), DatumReader()):
    for e in DataFileReader(open(local(m["manifest_path"]), "rb"), DatumReader()):
        if e["status"] != 2 and e["data_file"].get("content", 0) == 0:
            files.append(local(e["data_file"]["file_path"]))
print(f"metadata {loc}: snapshot {sid} ({snap['summary'].get('operation')}), {len(meta['snapshots'])} snapshots, {len(files)} live files", file=sys.stderr)
print("\n".join(files))
