from .vlm_attention import VLMAttentionSegmentor

__all__ = ['VLMAttentionSegmentor']
