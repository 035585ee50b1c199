"""The anchor of this package's shipped configs for mmengine.

mmengine resolves a scoped config name, ``mmseg_powerone::NAME`` in a
``_base_`` list, to ``<installed path>/.mim/configs/NAME``, the installed
path being that of the name ``MODULE2PACKAGE`` maps the scope to. Mapped to
this module, the path is the folder of the imported package: the
installed package of a wheel (its ``.mim`` copied in at build), or the
checkout's of an editable install (its ``.mim`` linked to the checkout's
``configs/`` and ``checkpoints/`` at install, as mmseg's ``setup.py``
links its own), which the installed distribution's location would miss.
"""
