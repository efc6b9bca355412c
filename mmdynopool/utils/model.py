"""Build a model from a config (and optionally a checkpoint) for analysis."""
from typing import List, Optional

from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

__all__ = ['build_model_from_cfg', 'shape_adaptor_limit', 'load_weights']


def load_weights(model: nn.Module, checkpoint: str) -> List[str]:
    """Load ``checkpoint``'s weights into ``model`` as mmengine's
    ``load_checkpoint`` does (not strictly: mismatches are logged, a
    ``module.`` prefix dropped), but read through
    :func:`~mmdynopool.utils.read_checkpoint`, i.e. with
    ``weights_only=True`` passed explicitly (torch's
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` only overrides an unset one).

    Args:
        model (nn.Module): The model.
        checkpoint (str): A checkpoint file.

    Returns:
        list[str]: The model's state-dict keys the checkpoint lacks.
    """
    from mmengine.runner.checkpoint import _load_checkpoint_to_model

    from .checkpoint import read_checkpoint
    ckpt = read_checkpoint(checkpoint)
    state = ckpt.get('state_dict', ckpt)
    keys = {
        k[len('module.'):] if k.startswith('module.') else k
        for k in state
    }
    _load_checkpoint_to_model(model, ckpt, strict=False)
    return sorted(set(model.state_dict()) - keys)


def build_model_from_cfg(config: str,
                         checkpoint: Optional[str] = None,
                         cfg_options: Optional[dict] = None):
    """``(cfg, model)`` in eval mode on the CPU; the checkpoint's learned
    alpha (and weights) are loaded when given (:func:`load_weights`).

    Args:
        config (str): Config file.
        checkpoint (str, optional): Weights and alphas to load.
        cfg_options (dict, optional): Merged into the config.

    Returns:
        tuple: ``(cfg, model)``: the Config and the model.
    """
    from mmengine.registry import MODELS
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.get('data_preprocessor') is not None:
        # What mmengine's Runner does: a top-level data_preprocessor (the
        # mmpretrain / mmseg config convention) goes into the model.
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_weights(model, checkpoint)
    _memory_penalty(cfg, model)
    model.eval()
    return cfg, model


def shape_adaptor_limit(cfg):
    """``(input_size, d_limit)`` of the config's ``ShapeAdaptorHook``
    memory limit (Eq. 6-8), or ``(None, None)`` without one.

    Args:
        cfg (Config): A config.

    Returns:
        tuple: ``(input_size, d_limit)``.
    """
    hook = next(
        (h for h in cfg.get('custom_hooks', []) if
         h.get('type') == 'ShapeAdaptorHook' and h.get('d_limit') is not None),
        None)
    return (hook['input_size'], hook['d_limit']) if hook else (None, None)


def _memory_penalty(cfg, model) -> None:
    """A Shape Adaptor network trained under a memory limit runs with the
    penalty of Eq. (8) for its alphas (what ShapeAdaptorHook sets before
    testing; it is not in the state dict)."""
    from ..models.layers import ShapeAdaptor, set_shape_adaptor_penalty
    set_shape_adaptor_penalty(
        [m for m in model.modules() if isinstance(m, ShapeAdaptor)],
        *shape_adaptor_limit(cfg))
