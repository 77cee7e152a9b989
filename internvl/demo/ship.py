"""Copy a trained demo checkpoint into the repository as the shipped demo LLM (``resources/demo_llm``).

Why: the real pipeline starts from a downloaded chat LLM; the demo's equivalent took 48 minutes on 2 cores
to make (config/demo_llm.yaml), more than ``make demo``'s budget, so the result is shipped and pinned by
its content hash in config/demo.yaml. This is the one step between that run and the repository:

    python -m internvl.demo.ship work/demo_llm/models/demo_llm resources/demo_llm

It copies the checkpoint files only (no Trainer state, no hash cache), replaces ``dest`` atomically and
prints the ``sha256`` to pin.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from internvl.provenance import checkpoint_hash

SHIPPED_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "lm_pretrain_summary.json")
REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def ship(src: str | Path, dest: str | Path) -> str:
    """Copy ``src``'s checkpoint files to ``dest`` (replacing it); return the copy's content hash."""
    src, dest = Path(src), Path(dest)
    missing = [name for name in REQUIRED if not (src / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{src}: not a finished checkpoint, missing {', '.join(missing)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for name in SHIPPED_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, staging / name)
        for path in staging.iterdir():
            path.chmod(0o644)  # mkdtemp and a 0600 source would make the shipped copy private
        staging.chmod(0o755)
        digest = checkpoint_hash(staging)
        (staging / ".internvl_sha256.json").unlink(missing_ok=True)  # mtimes change on checkout anyway
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return digest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="trained checkpoint directory (original format)")
    parser.add_argument("dest", help="where to ship it, e.g. resources/demo_llm")
    args = parser.parse_args(argv)
    digest = ship(args.src, args.dest)
    print(f"{args.dest}: sha256 {digest}\npin it in config/demo.yaml: models.demo_init.sha256: {digest}")


if __name__ == "__main__":
    main()
