"""Dataset converters: raw annotations into the label maps our datasets
read (as mmseg's ``tools/dataset_converters``)."""
