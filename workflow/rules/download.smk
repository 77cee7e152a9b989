# Weights and data sources (config/sources.yaml, config `sources_file`) -> their places under data/,
# playground/, pretrained/ and this folder, through internvl/download.py. Each source ends in a stamp
# <data_root>/.sources/<name>.json (SOURCE_STATE, common.smk); benchmark and SFT normalization take
# the stamps of their sources as ancient() inputs, so `snakemake results/mmbench_dev.json` starts with
# the MMBench download, and a download never triggers a rerun. Integrity: per-file <dest>.sha256.json
# records (size + sha256 on the first download, verified after; a sha256 pinned in sources.yaml is
# checked as well). Targets, one source or a group at a time:
#   snakemake --cores 4 --resources downloads=4 -- download_eval
#   snakemake --cores 1 data/.sources/mmbench_dev_20230712.json
# Manual sources (Google Drive, licence forms) have their own rule, place_manual_source: it stops with
# one line "place <file> from <where> at <path>" until the file or folder is there, then records it.
# HF_ENDPOINT / HF_TOKEN / HF_HUB_OFFLINE=1 apply to the hub sources (see internvl/download.py).

_MANUAL = [n for n, e in SOURCES.items() if e["kind"] == "manual"]
_FETCHED = [n for n in SOURCES if n not in _MANUAL]


def _after(wildcards):
    return source_inputs(*(SOURCES[wildcards.source].get("after") or []))


rule fetch_source:
    input:
        _after,
    output:
        f"{SOURCE_STATE}/{{source}}.json",
    wildcard_constraints:
        source=one_of(_FETCHED),
    params:
        sources_file=SOURCES_FILE,  # the entry is read there: editing one source reruns nothing else
        roots=SOURCE_ROOTS,
    resources:
        downloads=1,  # cap parallel transfers with --resources downloads=N
    log:
        f"{SOURCE_STATE}/logs/{{source}}.log",
    script:
        "../scripts/download_source.py"


rule place_manual_source:
    input:
        _after,
    output:
        f"{SOURCE_STATE}/{{source}}.json",
    wildcard_constraints:
        source=one_of(_MANUAL),
    params:
        sources_file=SOURCES_FILE,
        roots=SOURCE_ROOTS,
    log:
        f"{SOURCE_STATE}/logs/{{source}}.log",
    script:
        "../scripts/download_source.py"


# one target per group of sources.yaml (test_sources.py checks that every group has one)
rule download_weights:
    input:
        source_inputs(*sources_in("weights")),


rule download_sft:
    input:
        source_inputs(*sources_in("sft")),


rule download_sft_optional:
    input:
        source_inputs(*sources_in("sft_optional")),


rule download_eval:
    input:
        source_inputs(*sources_in("eval")),


rule download_eval_train:
    input:
        source_inputs(*sources_in("eval_train")),


rule download_eval_extra:
    input:
        source_inputs(*sources_in("eval_extra")),


rule download_configured_benchmarks:
    input:
        sources_for(*BENCHES),


rule download_manual:
    # every source to place by hand; with -k (--keep-going) one run lists all that are missing
    input:
        source_inputs(*_MANUAL),


rule download_everything:
    input:
        source_inputs(*SOURCES),


# a manual source's check reads one path: no cluster job for it
localrules:
    place_manual_source,
