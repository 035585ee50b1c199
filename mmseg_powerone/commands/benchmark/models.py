"""Randomly initialised BLIP models of the real checkpoints' sizes (no
downloads) and the class-name sets that give a benchmark its prompt
counts."""
import torch

from ...class_names import read_class_file
from ...utils.resources import class_names_path

# Sizes of Salesforce/blip-itm-{base,large}-coco (their config.json): the
# text side is BERT-base with cross-attention in every layer.
GEOMETRY = {
    'base': dict(vision=dict(hidden_size=768, num_hidden_layers=12,
                             num_attention_heads=12, intermediate_size=3072)),
    'large': dict(vision=dict(hidden_size=1024, num_hidden_layers=24,
                              num_attention_heads=16, intermediate_size=4096)),
    # a smoke-test size (the tests run the tool end to end with it)
    'tiny': dict(vision=dict(hidden_size=48, num_hidden_layers=2,
                             num_attention_heads=4, intermediate_size=192),
                 text=dict(hidden_size=32, num_hidden_layers=9,
                           num_attention_heads=4, intermediate_size=128)),
}
TEXT = dict(vocab_size=30524, hidden_size=768, num_hidden_layers=12,
            num_attention_heads=12, intermediate_size=3072,
            max_position_embeddings=512)


def read_names(name):
    return read_class_file(class_names_path(name + '.txt'))


def all_names():
    """Every class name (synonyms included) of the benchmark class files,
    each once, in file order."""
    names = {}
    for f in ('coco_stuff', 'ade20k', 'context60', 'voc21'):
        for c in read_names(f):
            names.update(dict.fromkeys(c))
    return list(names)


def prompt_setup(num_prompts):
    """Class names giving ``num_prompts`` prompts: VOC's 21 classes (P=21),
    VOC with its 29 background synonyms (P=49), otherwise COCO-Stuff and
    ADE20K names without a background class. P=1 is text-side only."""
    if num_prompts == 21:
        return [c[0] for c in read_names('voc21')], True
    if num_prompts == 49:
        return class_names_path('voc21.txt'), True
    pool = all_names()
    if num_prompts > len(pool):
        raise SystemExit(f'benchmark.py: at most {len(pool)} prompts.')
    return pool[:max(num_prompts, 2)], False


def save_model(vlm, size, out_dir):
    """A random BLIP ITM model of the given geometry, with a tokenizer that
    knows every class-name word (one token per word, as BERT mostly has)."""
    from transformers import BlipConfig, BlipForImageTextRetrieval
    from ...shapes.tiny_vlms import SPECIAL_TOKENS, save_tokenizer
    words = {w for n in all_names() for w in n.lower().replace('-', ' ').split()}
    save_tokenizer(out_dir, sorted(words))
    text = dict(TEXT, **GEOMETRY[vlm].get('text', {}))
    text.update(encoder_hidden_size=GEOMETRY[vlm]['vision']['hidden_size'],
                pad_token_id=0, bos_token_id=SPECIAL_TOKENS.index('[DEC]'),
                sep_token_id=SPECIAL_TOKENS.index('[SEP]'), is_decoder=True)
    vision = dict(GEOMETRY[vlm]['vision'], image_size=size, patch_size=16)
    torch.manual_seed(0)
    model = BlipForImageTextRetrieval(BlipConfig(text_config=text,
                                                 vision_config=vision))
    model.save_pretrained(out_dir)
    del model
    return out_dir


def build(model_dir, num_prompts, mode, chunk, crf, device,
          itm_reduce='max', compile_mode=None):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    names, has_bg = prompt_setup(num_prompts)
    seg = MODELS.build(dict(
        type='VLMAttentionSegmentor',
        vlm=dict(type='BLIPAdapter', pretrained=model_dir, prompt_chunk=chunk),
        class_names=names, has_background=has_bg, layers=[6, 8],
        map_mode=mode, itm_reduce=itm_reduce,
        compile=dict(mode=compile_mode) if compile_mode else None,
        crf=dict(type='ConvCRF') if crf else None))
    return seg.to(device).eval()
