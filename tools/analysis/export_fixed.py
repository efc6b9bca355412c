"""Export "Fix (Final)": a config that retrains a learned shape, frozen.

    python tools/analysis/export_fixed.py CONFIG CHECKPOINT --out FIXED.py

The new config inherits CONFIG (``_base_``) and overrides only what
changed: every DynOPool starts at the checkpoint's learned scale with
``fixed=True`` (alpha is not trained) and the GMACs loss is dropped, or,
for a Shape Adaptor network, every adaptor starts at its learned alpha,
fixed, with the memory penalty those alphas had, and ShapeAdaptorHook is
dropped. Train it from scratch to separate the effect of the shape from
that of learning it (Shape Adaptor, Table 4).
"""
import argparse

from mmdynopool.engine import export_fixed_config_file


def main(argv=None):
    parser = argparse.ArgumentParser(description='Export Fix (Final)')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='new config file')
    args = parser.parse_args(argv)
    fixed = export_fixed_config_file(args.config, args.checkpoint, args.out)
    backbone = fixed.model.backbone
    key = 'init_alphas' if 'init_alphas' in backbone else 'init_scales'
    print(f'wrote {args.out}: {key} = {backbone[key]}')


if __name__ == '__main__':
    main()
