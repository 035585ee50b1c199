"""Datasets of a user's own labelled images: the (image, label map) pairs
``adapt`` trains on, listed in a JSON file, and a folder of images with
their masks, what a saved adaptation is tested on."""
import json
import os
import os.path as osp
from typing import List, Optional

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..utils.labels import lossy_format

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


@DATASETS.register_module()
class ExampleListDataset(BaseSegDataset):
    """Images and label maps listed in a JSON file (``ann_file``): a list of
    ``{"img_path": ..., "seg_map_path": ...}``, absolute paths. What
    :meth:`PowerOneInferencer.adapt` trains on."""

    def load_data_list(self) -> List[dict]:
        with open(self.ann_file, encoding='utf-8') as f:
            items = json.load(f)
        return [dict(img_path=item['img_path'],
                     seg_map_path=item['seg_map_path'],
                     label_map=self.label_map,
                     reduce_zero_label=self.reduce_zero_label, seg_fields=[])
                for item in items]


@DATASETS.register_module()
class ImageMaskFolderDataset(BaseSegDataset):
    """Your own labelled images: ``data_root/images/NAME.<jpg, png, ...>``
    and ``data_root/masks/NAME.png``, each mask a class-index map over the
    model's classes (0 background, ``i`` the i-th class after it, 255
    ignored), lossless (PNG). What a saved adaptation's config tests on::

        python tools/test.py cat.py cat.pth \\
            --cfg-options test_dataloader.dataset.data_root=my_test

    Every image needs its mask; a missing folder, a missing mask or a
    JPEG mask is refused, naming it and the fix.
    """

    def __init__(self, data_root: Optional[str] = None,
                 img_dir: str = 'images', mask_dir: str = 'masks', **kwargs):
        if not data_root:
            raise ValueError(
                'ImageMaskFolderDataset: no data_root, i.e. no test images. '
                'Give a folder with images/ and masks/ (PNG index maps over '
                "the model's classes): python tools/test.py CONFIG CHECKPOINT "
                '--cfg-options test_dataloader.dataset.data_root=FOLDER, or '
                "save the adaptation with save(path, test_data='FOLDER').")
        self.img_dir, self.mask_dir = img_dir, mask_dir
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        images = osp.join(self.data_root, self.img_dir)
        masks = osp.join(self.data_root, self.mask_dir)
        for folder in (images, masks):
            if not osp.isdir(folder):
                raise ValueError(
                    f'ImageMaskFolderDataset: {folder} is not a folder. The '
                    f'test set is {self.data_root}/{self.img_dir}/NAME.jpg '
                    f'(or .png, ...) with {self.data_root}/{self.mask_dir}/'
                    'NAME.png, a class-index map per image.')
        names = sorted(f for f in os.listdir(images)
                       if f.lower().endswith(IMAGE_EXTENSIONS))
        if not names:
            raise ValueError(f'ImageMaskFolderDataset: no image files in '
                             f'{images} ({", ".join(IMAGE_EXTENSIONS)}).')
        items, missing = [], []
        for name in names:
            mask = osp.join(masks, osp.splitext(name)[0] + '.png')
            if not osp.isfile(mask):
                missing.append(osp.basename(mask))
                continue
            with open(mask, 'rb') as f:
                fmt = lossy_format(f.read(16))
            if fmt:
                raise ValueError(
                    f'ImageMaskFolderDataset: {mask} is a {fmt} under a .png '
                    'name: lossy compression changes label values along '
                    'every edge. Save the masks losslessly (PNG).')
            items.append(dict(img_path=osp.join(images, name),
                              seg_map_path=mask, label_map=self.label_map,
                              reduce_zero_label=self.reduce_zero_label,
                              seg_fields=[]))
        if missing:
            raise ValueError(
                f'ImageMaskFolderDataset: {len(missing)} image(s) in {images} '
                f'have no mask in {masks}: {missing[:5]}. Each image NAME.* '
                'needs NAME.png there.')
        return items
