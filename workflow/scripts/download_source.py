"""Bring one source of config/sources.yaml in place (internvl.download.fetch_source); write its stamp."""
import json
import logging
import os

from internvl.download import DownloadError, fetch_source, load_sources
from internvl.logs import setup

setup(snakemake.log[0])  # noqa: F821
name = snakemake.wildcards.source  # noqa: F821
doc = load_sources(snakemake.params.sources_file)  # noqa: F821
try:
    summary = fetch_source(name, doc["sources"][name], snakemake.params.roots)  # noqa: F821
except DownloadError as exc:  # the message is the instruction (manual sources) or the diagnosis
    logging.getLogger("download").error("%s", exc)
    raise SystemExit(f"error: {exc}") from None
out = snakemake.output[0]  # noqa: F821
tmp = f"{out}.tmp{os.getpid()}"
with open(tmp, "w") as fh:
    json.dump(summary, fh, indent=2, sort_keys=True)
    fh.write("\n")
os.replace(tmp, out)
