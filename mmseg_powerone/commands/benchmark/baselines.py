"""Reference computations the optimised map path is measured and checked
against: the floor any attention-map method pays, and the adapter's forward
written the naive way (one text pass per prompt)."""
import contextlib

import torch


def floor(adapter, tokens, x, layers, itm_reduce=None):
    """Vision forward plus one text pass of the first prompt with the image
    keys/values computed once: what any attention-map method pays (the
    adapter's ITM rule unless ``itm_reduce`` is given)."""
    itm_reduce = itm_reduce or adapter.itm_reduce
    ids, mask = tokens['input_ids'][:1], tokens['attention_mask'][:1]
    t = int(mask.sum())
    image_tokens, _ = adapter.encode_image(x)
    kv = adapter.cross_kv(image_tokens)
    adapter.text_forward(ids[:, :t].to(x.device), mask[:, :t].to(x.device),
                         kv, layers, itm_reduce)


def naive_forward(adapter, tokens, x, layers, itm_reduce=None,
                  map_mode=None, head=None):
    """The adapter's ``forward`` written the naive way: one text-encoder pass
    per prompt and image, the image keys/values recomputed for each. Same
    outputs, with the adapter's map settings unless others are given."""
    itm_reduce = itm_reduce or adapter.itm_reduce
    map_mode = map_mode or adapter.map_mode
    head = adapter.gradcam_head if head is None else head
    image_tokens, grid = adapter.encode_image(x)
    ids = tokens['input_ids'].to(x.device)
    mask = tokens['attention_mask'].to(x.device)
    names = tokens['name_mask'].to(x.device)
    attn, itm = [], []
    for b in range(x.shape[0]):
        per_prompt = []
        for p in range(ids.shape[0]):
            # 'max' reads the padding of the whole set (maps.reduce_itm)
            t = ids.shape[1] if itm_reduce == 'max' else int(mask[p].sum())
            kv = adapter.cross_kv(image_tokens[b:b + 1])
            per_prompt.append(adapter.text_forward(
                ids[p:p + 1, :t], mask[p:p + 1, :t], kv, layers, itm_reduce,
                map_mode, names[p:p + 1, :t], head))  # [1, L, 1, N], [1, 1]
        attn.append(torch.cat([a[0] for a, _ in per_prompt], dim=1))  # [L, P, N]
        itm.append(torch.cat([i[0] for _, i in per_prompt]))  # [P]
    return dict(attn=torch.stack(attn), itm=torch.stack(itm), grid=grid)


def counted_lengths(attention_mask, itm_reduce) -> list:
    """Token positions of each prompt's text pass that the ITM rule reads:
    the real tokens, or with 'max' every position of the padded set
    (:func:`~mmseg_powerone.models.utils.maps.reduce_itm`)."""
    if itm_reduce == 'max':
        return [attention_mask.shape[1]] * attention_mask.shape[0]
    return [int(n) for n in attention_mask.sum(1).tolist()]


def required_flops(adapter, tokens, x, layers, map_mode='attention',
                   itm_reduce='max_real'):
    """FLOPs of the work no implementation of the method can skip, counted
    by torch's ``FlopCounterMode`` on the adapter's real modules (not by
    hand), as ``dict(vision=..., text=...)`` for the batch ``x``:

    * vision: each image's vision forward and each cross-attending layer's
      image keys and values, once per image;
    * text: every prompt's text pass against every image, the ITM head, and
      in GradCAM mode the backward from the ITM logit that the maps need.
      A prompt's pass covers the token positions its ITM rule reads: its
      real tokens ('max_real', 'first'), or with 'max' (the reference
      code's rule) every position up to the set's longest prompt, whose
      padding outputs that score reads. Text layers that see no image are
      counted once per prompt, not once per image.

    Prompts of the same counted length cost the same, so each length is
    counted once and multiplied; so is each image's vision side.

    Attention products (scores and their weighted sum) are counted with
    ``scaled_dot_product_attention`` routed through its math backend: the
    counter has no formula for the CPU's fused kernel and would count
    every such product as zero (BLIP-large at 512 px, 200 prompts: 154 of
    1,141 GFLOP).
    """
    from collections import Counter

    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    def counting():  # the counter, with attention products made visible
        stack = contextlib.ExitStack()
        stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        return stack, stack.enter_context(FlopCounterMode(display=False))

    B = x.shape[0]
    ids = tokens['input_ids'].to(x.device)
    mask = tokens['attention_mask'].to(x.device)
    names = tokens['name_mask'].to(x.device)
    lengths = counted_lengths(mask, itm_reduce)
    stack, counter = counting()
    with stack, torch.no_grad():
        image_tokens, _ = adapter.encode_image(x[:1])
        kv = adapter.cross_kv(image_tokens)
    vision = counter.get_total_flops() * B
    # the same image B times: the text side's cost does not depend on pixels
    kv = [tuple(t.expand(B, *t.shape[1:]) for t in pair) for pair in kv]
    text = 0
    for t, n in Counter(lengths).items():
        p = lengths.index(t)
        stack, counter = counting()
        with stack:
            adapter.text_forward(ids[p:p + 1, :t], mask[p:p + 1, :t], kv,
                                 layers, itm_reduce, map_mode,
                                 names[p:p + 1, :t])
        text += counter.get_total_flops() * n
    return dict(vision=vision, text=text)
