"""Export "Fix (Final)": a config that retrains a learned shape, frozen.

    python tools/analysis/export_fixed.py CONFIG CHECKPOINT --out FIXED.py

The new config starts every DynOPool at the checkpoint's learned scale with
``fixed=True`` (alpha is not trained) and drops the GMACs loss, or, for a
Shape Adaptor network, starts every adaptor at its learned alpha, fixed,
with the memory penalty those alphas had, and drops ShapeAdaptorHook. Train
it from scratch to separate the effect of the shape from that of learning it
(Shape Adaptor, Table 4).
"""
import argparse

from mmdynopool.analysis import export_fixed_config_file


def main():
    parser = argparse.ArgumentParser(description='Export Fix (Final)')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='new config file')
    args = parser.parse_args()
    fixed = export_fixed_config_file(args.config, args.checkpoint, args.out)
    backbone = fixed.model.backbone
    key = 'init_alphas' if 'init_alphas' in backbone else 'init_scales'
    print(f'wrote {args.out}: {key} = {backbone[key]}')


if __name__ == '__main__':
    main()
