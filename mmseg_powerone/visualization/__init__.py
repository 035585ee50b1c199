from .visualizer import PowerOneSegVisualizer

__all__ = ['PowerOneSegVisualizer']
