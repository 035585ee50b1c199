# PASCAL VOC 2012 val (21 classes) through the reference code's geometry
# (reference_geometry.py).
_base_ = ['./pascal_voc21.py', './reference_geometry.py']

test_pipeline = {{_base_.reference_pipeline}}
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
