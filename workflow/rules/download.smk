# Weights and data sources (config/sources.yaml) -> their places under data/, playground/, pretrained/,
# through internvl/download.py. Nothing here is part of `all`: ask for a stamp or a group, e.g.
#   snakemake --cores 4 --resources downloads=4 download_eval
#   snakemake --cores 1 data/.sources/mmbench_dev_20230712.json
# Each source ends in a stamp file <data_root>/.sources/<name>.json. Downstream rules take the stamps
# through source_inputs()/sources_for(), which wrap them in ancient(): a download never triggers a rerun,
# and re-verifying a source (delete its stamp) changes nothing downstream. Integrity is handled by the
# per-file <dest>.sha256.json records (size + sha256 recorded on the first download, verified after).
# Manual sources (Google Drive, licence forms) fail with "place ... at <path>; get it from <where>".
# HF_ENDPOINT / HF_TOKEN / HF_HUB_OFFLINE=1 apply to the hub sources (see internvl/download.py).
import re

from internvl.download import load_sources

SOURCES_FILE = f"{workflow.basedir}/config/sources.yaml"
_SOURCES_DOC = load_sources(SOURCES_FILE)
SOURCES = _SOURCES_DOC["sources"]
SOURCE_ROOTS = dict(_SOURCES_DOC["roots"], data=config["data_root"])
SOURCE_STATE = f"{config['data_root']}/.sources"


def source_stamp(name):
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r} (config/sources.yaml)")
    return f"{SOURCE_STATE}/{name}.json"


def source_inputs(*names):
    """ancient() stamps of the named sources: use these as inputs of rules that read downloaded files."""
    return [ancient(source_stamp(n)) for n in names]


def sources_in(*groups):
    return [n for n, e in SOURCES.items() if e.get("group") in groups]


def sources_for(*users):
    """Sources whose used_by names a benchmark (evaluate.sh task) or an SFT dataset, as ancient stamps."""
    return source_inputs(*[n for n, e in SOURCES.items() if set(e.get("used_by") or []) & set(users)])


rule fetch_source:
    input:
        lambda w: source_inputs(*(SOURCES[w.source].get("after") or [])),
    output:
        f"{SOURCE_STATE}/{{source}}.json",
    wildcard_constraints:
        source="|".join(re.escape(n) for n in SOURCES),
    params:
        sources_file=SOURCES_FILE,  # the entry is read there: editing one source reruns nothing else
        roots=SOURCE_ROOTS,
    resources:
        downloads=1,  # cap parallel transfers with --resources downloads=N
    log:
        f"{SOURCE_STATE}/logs/{{source}}.log",
    script:
        "../scripts/download_source.py"


rule download_weights:
    input:
        source_inputs(*sources_in("weights")),


rule download_sft:
    input:
        source_inputs(*sources_in("sft")),


rule download_eval:
    input:
        source_inputs(*sources_in("eval")),


rule download_configured_benchmarks:
    input:
        sources_for(*[registry.resolve(b).name for b in config["benchmarks"]]),


rule download_everything:
    input:
        source_inputs(*SOURCES),
