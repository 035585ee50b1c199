"""The tiny VLMs' architectures as pretraining sees them: how to build,
run and save each. Where a model keeps its parts (vision encoder, text
layers) is read from its adapter's ``MODULE_PATHS``: one statement of a
VLM's layout for the segmentor and for pretraining."""
import math
import os

import torch

from ...models.adapters import ALBEFAdapter, BLIPAdapter, LLaVAAdapter
from ..tiny_vlms import save_tokenizer, tiny_blip_config
from ..world import BACKGROUNDS, CLASSES, COLOURS, SIZES

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def text_stack(adapter_type, model, first: int = 0):
    """(module holding the text layers, its attribute name, index of the
    first cross-attending layer) of ``model``, by ``adapter_type``'s
    ``MODULE_PATHS`` (what LayerDrop swaps for a step)."""
    holder, _, attr = adapter_type.MODULE_PATHS['text_layers'].rpartition('.')
    return model.get_submodule(holder), attr, first


WORDS = list(CLASSES) + list(COLOURS) + list(SIZES) + list(BACKGROUNDS) + [
    'there', 'is', 'on', 'with']


# ---------------------------------------------------------------- model
class BlipArch:
    """The tiny BLIP: Hugging Face BlipForImageTextRetrieval."""
    name = 'BLIP'
    # the matching score the presence AUROC reads (the quickstart names it)
    matching = 'ITM("Image of {name}.")'

    prompt_template = 'Image of {}.'  # of the presence AUROC
    contrastive = True  # has ITC projections (a learnable temperature added)

    @staticmethod
    def tokenizer(out_dir):
        return save_tokenizer(out_dir, WORDS)

    objective = 'itc_itm'  # the training step (steps.STEPS)

    @staticmethod
    def build(tok, args):
        from transformers import BlipForImageTextRetrieval
        cfg = tiny_blip_config(
            vocab_size=len(tok), image_size=64, patch_size=args.patch,
            text_layers=args.text_layers, text_dim=args.width, text_heads=4,
            vision_layers=args.vision_layers, vision_dim=args.width,
            vision_heads=4, max_tokens=40, embed_dim=64)
        model = BlipForImageTextRetrieval(cfg)
        model.config._attn_implementation = 'eager'
        return model

    @staticmethod
    def vision(model):
        return BLIPAdapter.part_of(model, 'vision_encoder')

    @staticmethod
    def image_tokens(model, pixels):  # [B, 1 + N, D]
        return BlipArch.vision(model)(pixel_values=pixels).last_hidden_state

    @staticmethod
    def text_cls(model, ids, mask):  # unimodal text [CLS], [B, D]
        return model.text_encoder(input_ids=ids,
                                  attention_mask=mask).last_hidden_state[:, 0]

    @staticmethod
    def itm_logits(model, image_embeds, ids, mask):  # [N, T, 2]
        out = model.text_encoder(input_ids=ids, attention_mask=mask,
                                 encoder_hidden_states=image_embeds,
                                 encoder_attention_mask=torch.ones(
                                     image_embeds.shape[:2], dtype=torch.long))
        return model.itm_head(out.last_hidden_state)

    @staticmethod
    def caption_logits(model, image_embeds, ids, mask):  # [B, T, V]
        dec = ids.clone()
        dec[:, 0] = model.config.text_config.bos_token_id  # [DEC] for [CLS]
        out = model.text_encoder(input_ids=dec, attention_mask=mask,
                                 encoder_hidden_states=image_embeds,
                                 is_decoder=True)
        # the word embeddings as output layer: nothing to drop when saving
        words = BLIPAdapter.part_of(
            model, 'text_embeddings').word_embeddings.weight
        return out.last_hidden_state @ words.t()

    @staticmethod
    def cross_layers(model):
        return text_stack(BLIPAdapter, model)

    @staticmethod
    def save(model, out_dir):
        model.save_pretrained(out_dir)

    @staticmethod
    def adapter(out_dir):
        return BLIPAdapter(pretrained=out_dir)


class AlbefArch:
    """The tiny ALBEF: ALBEFModel, saved in the official checkpoint layout."""
    name = 'ALBEF'
    matching = 'ITM("Image of {name}.")'

    prompt_template = 'Image of {}.'  # of the presence AUROC
    contrastive = True  # has ITC projections (a learnable temperature added)

    @staticmethod
    def tokenizer(out_dir):
        return save_tokenizer(out_dir, WORDS)

    objective = 'itc_itm'  # the training step (steps.STEPS)

    @staticmethod
    def build(tok, args):
        from mmseg_powerone.shapes.tiny_vlms import tiny_albef_model
        return tiny_albef_model(
            vocab_size=len(tok), image_size=64, patch_size=args.patch,
            text_layers=args.text_layers, fusion_layer=args.fusion_layer,
            text_dim=args.width, text_heads=4, vision_layers=args.vision_layers,
            vision_dim=args.width, vision_heads=4, max_tokens=40, embed_dim=64)

    @staticmethod
    def vision(model):
        return ALBEFAdapter.part_of(model, 'vision_encoder')

    @staticmethod
    def image_tokens(model, pixels):
        return AlbefArch.vision(model)(pixels)

    @staticmethod
    def text_cls(model, ids, mask):
        return model.encode_text(ids, mask)[:, 0]

    @staticmethod
    def itm_logits(model, image_embeds, ids, mask):
        fused = model.fuse(model.encode_text(ids, mask), mask, image_embeds)
        return model.itm_head(fused)

    @staticmethod
    def mlm_logits(model, image_embeds, ids, mask):  # [B, T, V]
        fused = model.fuse(model.encode_text(ids, mask), mask, image_embeds)
        # the word embeddings as output layer: nothing to drop when saving;
        # scaled by 1/sqrt(width), as both sides are of norm ~sqrt(width)
        # (layer-normed states, N(0, 1) embeddings)
        words = ALBEFAdapter.part_of(
            model, 'text_embeddings').word_embeddings.weight
        return fused @ words.t() / words.shape[1] ** 0.5

    @staticmethod
    def cross_layers(model):
        return text_stack(ALBEFAdapter, model, model.text_cfg.fusion_layer)

    @staticmethod
    def save(model, out_dir):
        from ...models.vlms.albef import save_albef
        save_albef(model, os.path.join(out_dir, 'albef.pth'))

    @staticmethod
    def adapter(out_dir):
        return ALBEFAdapter(checkpoint=os.path.join(out_dir, 'albef.pth'),
                            tokenizer=out_dir, vision_heads=4, text_heads=4)


class LlavaArch:
    """The tiny LLaVA: Hugging Face ``LlavaForConditionalGeneration`` (CLIP
    ViT, projector, Llama), saved with its tokenizer in the llava-hf
    layout. It has no ITC or ITM head: it learns from captioning
    conditioned on the image tokens and from the yes/no question the
    adapter asks (:func:`llava_step`)."""
    name = 'LLaVA'
    matching = 'P(yes) to "Is there a {name} in the image? Answer yes or no."'
    prompt_template = '{}'  # the adapter puts the name into its question
    contrastive = False

    objective = 'llava'  # the training step (steps.STEPS)

    @staticmethod
    def tokenizer(out_dir):
        from ..tiny_vlms import save_llava_tokenizer
        return save_llava_tokenizer(out_dir, LLAVA_WORDS)

    @staticmethod
    def build(tok, args):
        from transformers import LlavaForConditionalGeneration
        from ..tiny_vlms import tiny_llava_config
        cfg = tiny_llava_config(
            tok, image_size=64, patch_size=args.patch,
            text_layers=args.text_layers, text_dim=args.width, text_heads=4,
            kv_heads=2, vision_layers=args.vision_layers,
            vision_dim=args.width)
        model = LlavaForConditionalGeneration(cfg)
        model.set_attn_implementation('sdpa')
        return model

    @staticmethod
    def vision(model):
        return LLaVAAdapter.part_of(model, 'vision_encoder')

    @staticmethod
    def image_tokens(model, pixels):  # [B, 1 + N, D] of the feature layer
        layer = model.config.vision_feature_layer
        out = LlavaArch.vision(model)(pixel_values=pixels,
                                      output_hidden_states=True)
        return out.hidden_states[layer]

    @staticmethod
    def cross_layers(model):
        holder, _, attr = LLaVAAdapter.MODULE_PATHS[
            'decoder_layers'].rpartition('.')
        return model.get_submodule(holder), attr, 0

    @staticmethod
    def save(model, out_dir):
        model.save_pretrained(out_dir)

    @staticmethod
    def adapter(out_dir):
        return LLaVAAdapter(pretrained=out_dir)


ARCHES = {'blip': BlipArch, 'albef': AlbefArch, 'llava': LlavaArch}
# LLaVA's chat format and question, as LLaVAAdapter's defaults
LLAVA_TEMPLATE = 'USER: <image>\n{} ASSISTANT:'
LLAVA_QUESTION = 'Is there a {} in the image? Answer yes or no.'
LLAVA_CAPTION = 'Describe the image.'
# questions about one object, answered by the word under its key
LLAVA_ATTRIBUTES = (('What colour is the {}?', 'colour'),
                    ('What is under the {}?', 'on'))
LLAVA_WORDS = WORDS + ['and', 'Describe', 'What', 'colour', 'under']


def build_model(tok, args):
    torch.manual_seed(args.seed)
    model = ARCHES[args.arch].build(tok, args)
    if not ARCHES[args.arch].contrastive:
        return model
    # ITC temperature, learnable as in BLIP (log scale); dropped on saving.
    model.register_parameter('itc_logit_scale',
                             torch.nn.Parameter(torch.tensor(math.log(1 / 0.07))))
    return model
