"""Build a checkpoint from its parts (InternViT repo, LLM repo, projector .pth); write its content hash."""
import json

from internvl.logs import setup
from internvl.model.parts import build_from_parts
from internvl.provenance import checkpoint_hash

sm = snakemake  # noqa: F821
setup(sm.log[0])
p = sm.params
summary = build_from_parts(p.vision_dir, p.llm_dir, p.mlp_path, sm.output.ckpt, **json.loads(p.build))
print(json.dumps({k: summary[k] for k in ("vocab_before", "vocab_after", "new_token_ids", "shards")}))
with open(sm.output.hash, "w") as fh:
    fh.write(checkpoint_hash(sm.output.ckpt) + "\n")
