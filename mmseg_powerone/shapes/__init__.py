"""The embedded synthetic world: images, labels and captions
(``world``), the tiny VLMs' builders (``tiny_vlms``) and their pretraining
(``pretrain``), and the quickstart that runs the method on it
(``quickstart``). Nothing here is needed to segment real images."""
