#!/usr/bin/env bash
# Reproduce the paper's BLIP numbers on PASCAL VOC (21 classes) and
# COCO-Object: InfoScore layer ranking (with each layer's mIoU for
# comparison), training-free evaluation on the InfoScore top-2 layers
# (single and multi prompt), and the one-shot protocol (supports drawn from
# the evaluation list and excluded from it, DRAWS draws, mean ± std).
# Writes WORK/results.md and WORK/results.json.
#
#   bash tools/reproduce.sh [WORK]            (default work_dirs/reproduce)
#
# Needs the datasets in mmseg's layout under $DATA (default data/):
#   $DATA/VOCdevkit/VOC2012   (JPEGImages, SegmentationClass, ImageSets;
#                              for the one-shot protocol also
#                              SegmentationClassAug and the reference's
#                              lists/pascal/val.txt)
#   $DATA/coco_object         (images/val2017 + annotations/val2017 from
#                              tools/convert_coco_object.py)
#   $DATA/coco2014            (one-shot protocol: val2014, DIaM's
#                              val_contain_crowd, the reference's
#                              lists/coco/val.txt)
# and the BLIP-large ITM weights: $BLIP, a Hugging Face id (the default,
# Salesforce/blip-itm-large-coco, needs the hub) or a local directory.
# A GPU is strongly advised (COCO val has 5000 images).
#
# Environment: DATA, BLIP, DRAWS (5), DATASETS ("voc21 coco-object"),
# ZEROSHOT_OPTIONS / ONESHOT_OPTIONS (extra --cfg-options for the
# training-free / one-shot runs, e.g. num_workers).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK="${1:-work_dirs/reproduce}"
DATA="${DATA:-data}"
BLIP="${BLIP:-Salesforce/blip-itm-large-coco}"
DRAWS="${DRAWS:-5}"
DATASETS="${DATASETS:-voc21 coco-object}"
read -r -a ZS_OPTS <<< "${ZEROSHOT_OPTIONS:-}"
read -r -a OS_OPTS <<< "${ONESHOT_OPTIONS:-}"
PY="${PYTHON:-python}"
CFG=configs/powerone

root_of() {
    case "$1" in
        voc21) echo "$DATA/VOCdevkit/VOC2012" ;;
        coco-object) echo "$DATA/coco_object" ;;
        *) echo "tools/reproduce.sh: unknown dataset '$1' (voc21, coco-object)" >&2
           exit 2 ;;
    esac
}

# the one-shot protocol reads the reference's lists (COCO: COCO-2014 val)
oneshot_root_of() {
    case "$1" in
        voc21) echo "$DATA/VOCdevkit/VOC2012" ;;
        coco-object) echo "$DATA/coco2014" ;;
    esac
}

for ds in $DATASETS; do
    for root in "$(root_of "$ds")" "$(oneshot_root_of "$ds")"; do
        if [ ! -d "$root" ]; then
            echo "tools/reproduce.sh: $root not found: prepare $ds as the" \
                 "README says ('Benchmarks') or set DATA." >&2
            exit 2
        fi
    done
done

for ds in $DATASETS; do
    root="$(root_of "$ds")"
    out="$WORK/$ds"
    zs=(model.vlm.pretrained="$BLIP" test_dataloader.dataset.data_root="$root"
        "${ZS_OPTS[@]}")
    echo "== $ds: InfoScore ranking (labels only for the comparison)"
    "$PY" tools/rank_layers.py "$CFG/powerone_blip-large_zeroshot_$ds.py" \
        --with-labels --out "$out/rank" \
        --cfg-options model.layers=infoscore "${zs[@]}"
    layers="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["selected"])' \
        "$out/rank/infoscore.json" | tr -d ' ')"
    for setting in zeroshot zeroshot-multiprompt; do
        echo "== $ds: training-free ($setting), layers $layers"
        "$PY" tools/test.py "$CFG/powerone_blip-large_${setting}_$ds.py" \
            --work-dir "$out/$setting" \
            --cfg-options "model.layers=$layers" "${zs[@]}"
    done
    echo "== $ds: one-shot protocol, $DRAWS draws"
    os_root="$(oneshot_root_of "$ds")"
    "$PY" tools/oneshot_eval.py "$CFG/powerone_blip-large_oneshot-protocol_$ds.py" \
        --draws "$DRAWS" --work-dir "$out/oneshot" \
        --cfg-options model.vlm.pretrained="$BLIP" \
        train_dataloader.dataset.dataset.data_root="$os_root" \
        test_dataloader.dataset.dataset.data_root="$os_root" "${OS_OPTS[@]}"
done

"$PY" tools/reproduce_table.py "$WORK" $DATASETS
