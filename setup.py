"""mmdynopool: learnable feature-map resizing (DynOPool, Shape Adaptor) for
OpenMMLab."""
import os.path as osp
import shutil
from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def readme():
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version():
    ns = {}
    with open(
            osp.join(HERE, 'mmdynopool', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), ns)
    return ns['__version__']


def parse_requirements(fname):
    """Read a requirements file, dropping comments and blank lines."""
    reqs = []
    with open(osp.join(HERE, 'requirements', fname), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                reqs.append(line)
    return reqs


def add_mim_extension():
    """Copy configs and tools into ``mmdynopool/.mim`` (OpenMMLab convention).

    This is what lets downstream configs say ``_base_ = 'mmdynopool::...'``.
    An editable install links instead of copying so edits show up at once.
    """
    mim_path = osp.join(HERE, 'mmdynopool', '.mim')
    import os
    os.makedirs(mim_path, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src = osp.join(HERE, name)
        dst = osp.join(mim_path, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        try:
            os.symlink(osp.relpath(src, mim_path), dst)
        except OSError:
            if osp.isdir(src):
                shutil.copytree(src, dst)
            else:
                shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmdynopool',
        version=get_version(),
        description='Learnable feature-map resizing (DynOPool, Shape Adaptor) '
        'for OpenMMLab',
        long_description=readme(),
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,
        package_data={
            'mmdynopool': [
                '.mim/configs/**/*', '.mim/tools/**/*', '.mim/model-index.yml',
                'ops/csrc/*.cpp'
            ]
        },
        python_requires='>=3.8',
        install_requires=parse_requirements('runtime.txt') +
        parse_requirements('mminstall.txt'),
        extras_require={
            'tests':
            parse_requirements('tests.txt'),
            'demo':
            parse_requirements('demo.txt'),
            'tensorboard':
            parse_requirements('tensorboard.txt'),
            'deploy':
            parse_requirements('deploy.txt'),
            'detection':
            parse_requirements('detection.txt'),
            'analysis':
            parse_requirements('analysis.txt'),
            'lint':
            parse_requirements('lint.txt'),
            'all':
            parse_requirements('tests.txt') + parse_requirements('demo.txt') +
            parse_requirements('tensorboard.txt') +
            parse_requirements('deploy.txt') +
            parse_requirements('detection.txt') +
            parse_requirements('analysis.txt'),
        },
        zip_safe=False)
