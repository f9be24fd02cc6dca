#!/usr/bin/env python3
"""Writes schemas/fingerprints.json: the Parsing Canonical Form and CRC-64-AVRO fingerprint of every
.avsc under schemas/, computed by fastavro, a second Avro implementation. The Rust codec's own
canonical form and fingerprints are tested against this file."""
import json, pathlib, sys
from fastavro.schema import parse_schema, to_parsing_canonical_form, fingerprint

root = pathlib.Path(__file__).resolve().parent.parent / "schemas"
out = {}
for path in sorted(list(root.glob("*.avsc")) + list(root.glob("history/*.avsc"))):
    parsed = parse_schema(json.loads(path.read_text()), _write_hint=False)
    canonical = to_parsing_canonical_form(parsed)
    out[str(path.relative_to(root))] = {
        "canonical": canonical,
        "crc64avro": fingerprint(canonical, "CRC-64-AVRO"),
    }
(root / "fingerprints.json").write_text(json.dumps(out, indent=2) + "\n")
print(json.dumps({k: v["crc64avro"] for k, v in out.items()}, indent=2), file=sys.stderr)
