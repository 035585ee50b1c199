# The paper's one-shot protocol on PASCAL VOC (21 classes): the supports
# (one per foreground class, only that class in the image) are drawn from
# the evaluation list and removed from it; 512 x 512; reference schedule
# (AdamW 2e-4, 2 images per step, 5 passes); ConvCRF refinement as the
# reference (filter 15, blur 4, 20 iterations). Report 5 draws:
#   python tools/oneshot_eval.py THIS_CONFIG --draws 5
# (which gives both sides the same seed per draw).
_base_ = ['./powerone_blip-large_oneshot_voc21.py']
model = dict(crf=dict(type='ConvCRF', filter_size=15, blur=4, iters=20))

# supports from the evaluation list (the one-shot training pipeline)...
train_dataloader = dict(
    dataset=dict(dataset=dict(ann_file='ImageSets/Segmentation/val.txt')))
# ... and the same draw excluded from the evaluation
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='OneShotDataset',
        exclude=True,
        shots=1,
        seed=0,
        dataset={{_base_.test_dataloader.dataset}}))
