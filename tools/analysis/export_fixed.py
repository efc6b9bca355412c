"""Export "Fix (Final)": a config that retrains a learned shape, frozen.

    python tools/analysis/export_fixed.py CONFIG CHECKPOINT --out FIXED.py

The new config starts every DynOPool at the checkpoint's learned scale with
``fixed=True`` (alpha is not trained) and drops the GMACs loss; train it
from scratch to separate the effect of the shape from that of learning it
(Shape Adaptor, Table 4).
"""
import argparse

from mmdynopool.analysis import export_fixed_config
from mmdynopool.utils import build_model_from_cfg


def main():
    parser = argparse.ArgumentParser(description='Export Fix (Final)')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='new config file')
    args = parser.parse_args()
    cfg, model = build_model_from_cfg(args.config, args.checkpoint)
    fixed = export_fixed_config(cfg, model)
    fixed.dump(args.out)
    print(f'wrote {args.out}: init_scales = '
          f'{fixed.model.backbone.init_scales}')


if __name__ == '__main__':
    main()
