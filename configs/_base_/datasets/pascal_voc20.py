# PASCAL VOC 2012 val without the background class (VOC20): mmseg's VOC
# dataset with the 20 object classes as its metainfo, so background pixels
# map to 255 (ignored) and the objects to 0..19. 512 x 512 as VOC21.
_base_ = ['./pascal_voc21.py']
voc20_classes = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
                 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
                 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
                 'train', 'tvmonitor')
val_dataloader = dict(dataset=dict(metainfo=dict(classes=voc20_classes)))
test_dataloader = val_dataloader
