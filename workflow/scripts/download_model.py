"""Download a checkpoint from the Hugging Face hub at a pinned revision (huggingface_hub)."""
import logging

from internvl.download import DownloadError
from internvl.hub import download_checkpoint
from internvl.logs import setup

sm = snakemake  # noqa: F821
setup(sm.log[0])
p = sm.params
logging.getLogger("download").info("model %s: %s@%s -> %s", sm.wildcards.model, p.repo_id, p.revision, sm.output.ckpt)
try:
    digest = download_checkpoint(p.repo_id, p.revision, sm.output.ckpt, hash_out=sm.output.hash,
                                 pin_hint=f"models.{sm.wildcards.model}.revision in the config")
except DownloadError as exc:  # offline, unreachable, a changed file: name the model it is about
    raise type(exc)(f"model {sm.wildcards.model!r} (kind hub in the config): {exc}") from None
logging.getLogger("download").info("done: checkpoint sha256 %s", digest)
