"""Bring one source of config/sources.yaml in place (internvl.download.fetch_source); write its stamp.

A failure (no network, checksum, a manual source not placed yet) ends the job with one ``error:`` line
naming the source and what to do, in the rule's log too (internvl.logs.setup)."""
import json
import logging

from internvl.data.io import write_json_atomic
from internvl.download import fetch_source, load_sources
from internvl.logs import setup

sm = snakemake  # noqa: F821
setup(sm.log[0])
name = sm.wildcards.source
entry = load_sources(sm.params.sources_file)["sources"][name]
logging.getLogger("download").info("source %s (%s, group %s) -> root %s: %s", name, entry["kind"], entry.get("group"),
                                   entry["root"], entry["dest"])
summary = fetch_source(name, entry, sm.params.roots)
write_json_atomic(sm.output[0], summary)
logging.getLogger("download").info("done: %s", json.dumps(summary, sort_keys=True))
