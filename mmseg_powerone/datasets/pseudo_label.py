"""A student's training set: any mmseg dataset's images with a teacher's
pseudo-labels (``tools/pseudo_label.py``) as their annotations."""
import copy
import os.path as osp

from mmseg.registry import DATASETS

from ..distill import folder


@DATASETS.register_module()
class PseudoLabelDataset:
    """Wrap an mmseg dataset so that its label maps are a pseudo-label
    folder's: the inner dataset lists the images (its own label folder is
    never read and need not exist), each image's label is
    ``pseudo_dir/<image stem>.png``, and the classes and palette are the
    teacher's.

    Checked when built, each with the fix in the error: the folder is
    complete; it labelled exactly these images; the inner dataset's classes
    are the teacher's (a student of other classes would learn wrong
    indices).

    Args:
        dataset: the inner dataset's config (any ``BaseSegDataset``);
            ``data_prefix.seg_map_path`` is replaced by ``pseudo_dir``.
        pseudo_dir: the folder ``tools/pseudo_label.py --out`` wrote.
    """

    def __init__(self, dataset: dict, pseudo_dir: str,
                 lazy_init: bool = False):
        self.pseudo_dir = osp.abspath(pseudo_dir)
        record = folder.read_record(self.pseudo_dir)
        if record is None:
            raise FileNotFoundError(
                f'PseudoLabelDataset: {self.pseudo_dir} holds no pseudo-labels '
                f'({folder.RECORD} is missing). Make them first: python '
                f'tools/pseudo_label.py TEACHER_CONFIG --out {pseudo_dir} '
                '--data-config THIS_CONFIG (tools/distill.py runs both).')
        if record.get('status') != 'complete':
            done = len(folder.done_names(self.pseudo_dir,
                                         list(record.get('images', {}))))
            raise ValueError(
                f'PseudoLabelDataset: {self.pseudo_dir} is not complete '
                f'(status {record.get("status")!r}, {done} of '
                f'{len(record.get("images", {}))} images labelled by the '
                'teacher). Run the same tools/pseudo_label.py command again: '
                'it continues where it stopped.')
        self.record = record
        cfg = copy.deepcopy(dict(dataset))
        for t in cfg.get('pipeline') or []:
            if 'LoadAnnotations' in str(t.get('type', '')) and \
                    t.get('reduce_zero_label'):
                raise ValueError(
                    'PseudoLabelDataset: the pipeline loads labels with '
                    'reduce_zero_label=True, which would shift the teacher\'s '
                    'class indices down by one: use '
                    "dict(type='LoadAnnotations') in the student's "
                    'train_pipeline.')
        prefix = dict(cfg.get('data_prefix') or {})
        prefix['seg_map_path'] = self.pseudo_dir
        cfg.update(data_prefix=prefix, seg_map_suffix='.png',
                   reduce_zero_label=False)  # labels are class indices
        teacher = record['teacher']
        self._metainfo = dict(classes=tuple(teacher['classes']))
        if teacher.get('palette'):
            self._metainfo['palette'] = [list(p) for p in teacher['palette']]
        self.dataset = DATASETS.build(cfg)
        self._check_classes(list(self.dataset.metainfo.get('classes') or []))
        self._checked = False
        if not lazy_init:
            self.full_init()

    def _check_classes(self, inner):
        teacher = list(self.record['teacher']['classes'])
        if inner and [str(c) for c in inner] != teacher:
            raise ValueError(
                f'PseudoLabelDataset: the student dataset\'s classes {inner} '
                f'are not the teacher\'s {teacher} ({self.pseudo_dir}). A '
                'student learns the teacher\'s class indices: give the inner '
                'dataset the teacher\'s classes (metainfo=dict(classes=...)) '
                'or label with a teacher of these classes.')

    # ------------------------------------------------------------ dataset API
    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        if self._checked:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        labelled = set(self.record['images'])
        listed = {self._name(i) for i in range(len(self.dataset))}
        if listed != labelled:
            extra = sorted(listed - labelled)
            gone = sorted(labelled - listed)
            raise ValueError(
                f'PseudoLabelDataset: the dataset lists other images than '
                f'{self.pseudo_dir} labelled ({len(extra)} unlabelled, e.g. '
                f'{extra[:3]}; {len(gone)} labelled but not listed, e.g. '
                f'{gone[:3]}). Label this dataset\'s images: rerun '
                'tools/pseudo_label.py with this config as --data-config and '
                'a new --out.')
        self._checked = True

    def _name(self, index: int) -> str:
        info = self.dataset.get_data_info(index)
        return osp.relpath(info['seg_map_path'], self.pseudo_dir)[:-len('.png')]

    def get_data_info(self, index: int) -> dict:
        return self.dataset.get_data_info(index)

    def __getitem__(self, index: int):
        self.full_init()
        return self.dataset[index]

    def __len__(self) -> int:
        self.full_init()
        return len(self.dataset)
