"""SFT meta file + annotations -> parquet shards and manifest. A missing file names the source that fetches it."""
import json
import logging
from pathlib import Path

from internvl.data.sft import normalize_sft
from internvl.download import explain_missing
from internvl.errors import DataError
from internvl.logs import setup

sm = snakemake  # noqa: F821
setup(sm.log[0])
p = sm.params
log = logging.getLogger("normalize_sft")
log.info("%s: meta %s, base dir %s -> %s (%d download stamps)", sm.wildcards.data, p.meta, p.base_dir, p.out,
         len(sm.input))
try:
    manifest = normalize_sft(p.meta, p.base_dir, p.out, seed=p.seed, on_error=p.on_error,
                             verify_images=p.verify_images, embed_images=p.embed_images)
except DataError as exc:
    raise explain_missing(exc, sm.config, Path(sm.scriptdir).parents[1]) from None
log.info("done: %s", json.dumps({"total_samples": manifest["total_samples"], "skipped": manifest["skipped"],
                                 "sources": len(manifest["sources"]), "shards": len(manifest["shards"])}))
