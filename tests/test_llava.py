"""LLaVAAdapter against the Hugging Face model's own forward pass: the maps
come from the class-name tokens to the image tokens, P(yes) is the model's
answer, GradCAM equals an autograd computation on eager attentions."""
import pytest

from helpers import run_adapter
import torch

from transformers.models.llama.modeling_llama import apply_rotary_pos_emb


@pytest.fixture(scope='module')
def setup(tiny_llava_dir):
    from mmseg_powerone.class_names import build_prompts
    from mmseg_powerone.models.adapters.llava import LLaVAAdapter
    adapter = LLaVAAdapter(pretrained=tiny_llava_dir, torch_dtype='float32')
    prompts = build_prompts([['sky', 'grass'], ['cat'], ['dog', 'puppy']],
                            ['{}', 'a photo of {}'], multi_prompt=True)
    pixels = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    return adapter, prompts, pixels


def full_sequences(adapter, prompts):
    """Per prompt: the ids the llava-hf processor would give (image
    placeholder repeated once per image token) and the positions of the
    class name's tokens and of the image tokens, found independently."""
    tok = adapter.tokenizer
    image_id = adapter.model.config.image_token_id
    n_img = (64 // adapter.patch_size) ** 2
    out = []
    for text, name in zip(prompts.texts, prompts.names):
        before = tok('USER: ')['input_ids']
        after = tok(f'\nIs there a {text} in the image? Answer yes or no. '
                    'ASSISTANT:', add_special_tokens=False)['input_ids']
        ids = before + [image_id] * n_img + after
        name_ids = tok(name, add_special_tokens=False)['input_ids']
        starts = [i for i in range(len(before) + n_img, len(ids))
                  if ids[i:i + len(name_ids)] == name_ids]
        rows = list(range(starts[0], starts[0] + len(name_ids)))
        cols = list(range(len(before), len(before) + n_img))
        out.append((torch.tensor([ids]), rows, cols))
    return out


def test_attention_maps_and_yes_probability_match_the_hf_forward(setup):
    adapter, prompts, pixels = setup
    model = adapter.model
    layers = [0, 2]
    with torch.no_grad():
        ours = adapter(pixels, adapter.prompt_batch(prompts), layers)
    yes_id, no_id = adapter.answer_ids
    lm = model.model.language_model
    for p, (ids, rows, cols) in enumerate(full_sequences(adapter, prompts)):
        seen = {}
        hooks = [lm.layers[l].self_attn.register_forward_pre_hook(
            lambda m, a, kw, l=l: seen.__setitem__(l, kw['hidden_states']),
            with_kwargs=True) for l in layers]
        with torch.no_grad():
            logits = model(input_ids=ids, pixel_values=pixels).logits
        for h in hooks:
            h.remove()
        yes = logits[0, -1, [yes_id, no_id]].softmax(-1)[0]
        assert torch.allclose(ours['itm'][0, p], yes, atol=1e-5)
        pos = torch.arange(ids.shape[1])[None]
        for j, l in enumerate(layers):
            att = lm.layers[l].self_attn
            hidden = seen[l]
            cos, sin = lm.rotary_emb(hidden, pos)
            d = att.head_dim
            q = att.q_proj(hidden).view(1, -1, 4, d).transpose(1, 2)
            k = att.k_proj(hidden).view(1, -1, 2, d).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            k = k.repeat_interleave(2, dim=1)
            s = (q @ k.transpose(-1, -2))[0] * d ** -0.5  # [H, S, S]
            want = s[:, rows][:, :, cols].amax(0).sum(0)  # [N]
            assert torch.allclose(ours['attn'][0, j, p], want, atol=1e-4)


def test_gradcam_equals_autograd_on_eager_attentions(setup, tiny_llava_dir):
    from transformers import LlavaForConditionalGeneration
    adapter, prompts, pixels = setup
    eager = LlavaForConditionalGeneration.from_pretrained(
        tiny_llava_dir, attn_implementation='eager').eval()
    layers = [0, 2]
    with torch.no_grad():
        ours = run_adapter(adapter, pixels, adapter.prompt_batch(prompts),
                           layers, map_mode='gradcam', gradcam_head=None)
    yes_id, no_id = adapter.answer_ids
    for p, (ids, rows, cols) in enumerate(full_sequences(adapter, prompts)):
        out = eager(input_ids=ids, pixel_values=pixels, output_attentions=True)
        logit = out.logits[0, -1, yes_id] - out.logits[0, -1, no_id]
        probs = [out.attentions[l] for l in layers]
        grads = torch.autograd.grad(logit, probs)
        for j, (a, g) in enumerate(zip(probs, grads)):
            cam = (a * g.clamp(min=0))[0].mean(0)  # [S, S]
            want = cam[rows][:, cols].mean(0)
            assert torch.allclose(ours['attn'][0, j, p], want, atol=1e-5)


def test_bad_templates_are_refused(tiny_llava_dir):
    from mmseg_powerone.models.adapters.llava import LLaVAAdapter
    with pytest.raises(ValueError, match='must contain'):
        LLaVAAdapter(pretrained=tiny_llava_dir, template='USER: {} ASSISTANT:')
    with pytest.raises(ValueError, match='one "{}"'):
        LLaVAAdapter(pretrained=tiny_llava_dir, question='Is it there?')
    with pytest.raises(FileNotFoundError, match='llava-hf/llava-1.5-7b-hf'):
        LLaVAAdapter(pretrained='/nonexistent/llava')


def test_tuning_gradients_reach_the_image_tokens_through_the_cache(setup):
    """The shared [prefix, image] tokens run once into a KV cache; with
    gradients on (one-shot tuning), the tuned layers' key/value projections
    of the image tokens must still get their share: the gradient of the
    summed P(yes) equals that of the full sequences through the HF model."""
    adapter, prompts, pixels = setup
    model = adapter.model
    weight = adapter.decoder_layers[1].self_attn.k_proj.weight
    weight.requires_grad_(True)
    try:
        ours = adapter(pixels, adapter.prompt_batch(prompts), [0])
        (g_ours,) = torch.autograd.grad(ours['itm'].sum(), weight)
        yes_id, no_id = adapter.answer_ids
        total = 0
        for ids, _, _ in full_sequences(adapter, prompts):
            logits = model(input_ids=ids, pixel_values=pixels).logits
            total = total + logits[0, -1, [yes_id, no_id]].softmax(-1)[0]
        (g_full,) = torch.autograd.grad(total, weight)
    finally:
        weight.requires_grad_(False)
    assert g_full.abs().max() > 0
    torch.testing.assert_close(g_ours, g_full, atol=1e-5, rtol=1e-4)
