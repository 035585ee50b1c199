# COCO-Object (background + 80 things) through the reference code's
# geometry (reference_geometry.py).
_base_ = ['./coco_object.py', './reference_geometry.py']

test_pipeline = {{_base_.reference_pipeline}}
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
