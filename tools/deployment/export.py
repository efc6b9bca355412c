"""Export a trained model for deployment: ONNX or a ``torch.export`` program.

    python tools/deployment/export.py CONFIG CHECKPOINT --shape H W \
        [--format onnx|export] [--out FILE] [--static]

Builds the config's model with the checkpoint's weights and learned alphas,
switches every resizing layer to its deployment form (learned sizes as
integer expressions of the input size, plain ATen ops), exports
``model(x, mode='tensor')`` with a dynamic input height and width (unless
``--static``) and checks the export against eager at ``--shape`` and at a
larger size (ONNX in onnxruntime). Prints the file and the largest relative
difference per size.
"""
import argparse
import os.path as osp


def main(argv=None):
    from mmdynopool.utils import build_model_from_cfg
    from mmdynopool.utils.export import FORMATS, export_model
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        required=True,
        metavar=('H', 'W'),
        help='example input size')
    parser.add_argument('--format', choices=FORMATS, default='onnx')
    parser.add_argument(
        '--out',
        default=None,
        help='output file (default: next to the checkpoint)')
    parser.add_argument(
        '--static',
        action='store_true',
        help='fixed input size (default: dynamic H and W)')
    args = parser.parse_args(argv)
    if min(args.shape) < 2:
        parser.error(f'--shape must be two integers >= 2, got {args.shape}')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint!r} does not exist')
    out = args.out or osp.splitext(
        args.checkpoint)[0] + ('.onnx' if args.format == 'onnx' else '.pt2')
    _, model = build_model_from_cfg(args.config, args.checkpoint)
    result = export_model(
        model, out, args.shape, args.format, dynamic=not args.static)
    print(f'{result["format"]}: {result["file"]} '
          f'({result["switched"]} resizing layers in deployment form)')
    for size, err in result['max_rel_error'].items():
        print(f'  {size}: max |export - eager| / max |eager| = {err:.2e}')
    return result


if __name__ == '__main__':
    main()
