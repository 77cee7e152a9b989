"""Train the offline demo tokenizer on every text of the demo."""
import logging
from pathlib import Path

from internvl.demo.tokenizer import build_demo_tokenizer
from internvl.demo.writers import write_corpus
from internvl.logs import setup

setup(snakemake.log[0])  # noqa: F821
build_demo_tokenizer(write_corpus(Path(snakemake.params.root)), Path(snakemake.params.out))  # noqa: F821
logging.getLogger("demo").info("done: tokenizer in %s", snakemake.params.out)  # noqa: F821
