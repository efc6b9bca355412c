"""Oracle evaluation against brute force on a tiny model and real digits."""
import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch import nn

from mmdynopool.analysis.oracle import (classification_quality,
                                        combine_permutations,
                                        efficiency_search, efficiency_summary,
                                        greedy_accumulation, oracle_summary,
                                        permutation_macs, run_oracle)
from mmdynopool.models.dynamic import convert_to_dynamic


def test_quality_is_eq1():
    probs = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    labels = torch.tensor([2, 0])
    # Sample 0 wrong: p = 0.3. Sample 1 right: 0.6 + 1.
    torch.testing.assert_close(
        classification_quality(probs, labels), torch.tensor([0.3, 1.6]))


def tiny_classifier(cfg):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.eval()
    return model


def digits_loader(n=8, batch_size=3):
    init_default_scope('mmpretrain')  # ToyDigits; restored by conftest
    return Runner.build_dataloader(
        dict(
            batch_size=batch_size,
            num_workers=0,
            dataset=dict(
                type='ToyDigits',
                split='val',
                num_train=100,
                num_val=50,
                indices=n,
                pipeline=[dict(type='PackInputs')]),
            sampler=dict(type='DefaultSampler', shuffle=False)))


@pytest.fixture
def oracle_run(tiny_classifier_cfg):
    model = tiny_classifier(tiny_classifier_cfg)
    dyn = convert_to_dynamic(
        model.backbone, options={
            'stride': (1, 2),
            'kernel_size': (1, 3)
        })
    attrs = ('stride', 'kernel_size')
    perms = [
        p for p in dyn.permutations(attrs)  # 32 incl. the default
        if p[0] == (1, 3) and p[1] in ((2, 3), (1, 1))
    ]
    loader = digits_loader()
    res = run_oracle(model, loader, perms, attrs, progress=False)
    return model, dyn, perms, attrs, loader, res


def test_oracle_equals_brute_force(oracle_run):
    model, dyn, perms, attrs, loader, res = oracle_run
    dataset = loader.dataset
    q_ref = np.zeros((len(dataset), len(perms)))
    pred_ref = np.zeros_like(q_ref, dtype=int)
    labels = []
    with torch.no_grad():
        for s in range(len(dataset)):
            item = dataset[s]
            labels.append(int(item['data_samples'].gt_label))
            x = (item['inputs'].float()[None] - 33.3) / 78.6
            for j, p in enumerate(perms):
                # Set each dynamic layer by hand.
                for name, values in zip(dyn.names, p):
                    conv = dyn.modules[name][0]
                    conv.set_option(stride=values[0], kernel_size=values[1])
                logits = model(x, mode='tensor')
                probs = logits.softmax(1)[0]
                pred_ref[s, j] = int(probs.argmax())
                q_ref[s, j] = float(probs[labels[-1]]) + (
                    pred_ref[s, j] == labels[-1])
    dyn.reset()
    labels = np.array(labels)
    np.testing.assert_array_equal(res['labels'], labels)
    np.testing.assert_array_equal(res['pred'], pred_ref)
    np.testing.assert_allclose(res['q'], q_ref, rtol=1e-5, atol=1e-6)

    default = perms.index(dyn.default(attrs))
    summary = oracle_summary(res['q'], perms, default, dyn.names, res['pred'],
                             res['labels'])
    # Brute-force best / median / worst: sort each sample's qualities.
    correct = pred_ref == labels[:, None]
    case = {}
    for name, pos in (('best', -1), ('median', (len(perms) - 1) // 2),
                      ('worst', 0)):
        idx = [
            sorted(range(len(perms)), key=lambda j: q_ref[s, j])[pos]
            for s in range(len(labels))
        ]
        case[name] = 100 * np.mean([correct[s, j] for s, j in enumerate(idx)])
        assert summary[name] == pytest.approx(case[name])
    assert case['best'] >= case['median'] >= case['worst']
    assert summary['best'] == pytest.approx(100 * correct.any(1).mean())
    assert summary['static'] == pytest.approx(100 * correct[:, default].mean())
    assert summary['unique_predictions'] == {
        int(k): int(v)
        for k, v in zip(
            *np.unique([len(set(r)) for r in pred_ref], return_counts=True))
    }
    for layer, prefs in summary['preferences'].items():
        assert sum(prefs.values()) == pytest.approx(100, abs=0.1)


def test_resume_from_partial_results(oracle_run, tmp_path):
    model, dyn, perms, attrs, loader, res = oracle_run
    out = str(tmp_path / 'results.npz')
    run_oracle(model, digits_loader(n=4), perms, attrs, out, progress=False)
    assert np.load(out)['q'].shape == (4, len(perms))
    resumed = run_oracle(
        model, digits_loader(), perms, attrs, out, progress=False)
    for k in ('pred', 'labels'):
        np.testing.assert_array_equal(resumed[k], res[k])
    # Other batch splits may change the last float bit of a conv.
    np.testing.assert_allclose(resumed['q'], res['q'], rtol=1e-6)
    with pytest.raises(ValueError, match='other permutations'):
        run_oracle(
            model, digits_loader(), perms[:3], attrs, out, progress=False)


def test_greedy_accumulation_hand_example():
    correct = np.array([[1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                        [0, 0, 1, 0], [0, 0, 0, 0]],
                       dtype=bool)
    g = greedy_accumulation(correct)
    # Perm 0 and 2 both cover 2 samples; 0 wins the tie on accuracy alone
    # (2 = 2, then the lower index). Then 2 (+2), then 1 (+1); 3 adds none.
    assert g['order'] == [0, 2, 1, 3]
    np.testing.assert_allclose(
        g['accuracy'], [100 * 2 / 6, 100 * 4 / 6, 100 * 5 / 6, 100 * 5 / 6])


def test_combine_permutations_eq2_counts():
    a = [((i, ), (1, )) for i in range(30)]
    b = [((1, ), (i, )) for i in range(30)]
    c = [((i, ), (i, )) for i in range(9)]
    two = combine_permutations([a, b], 625)
    assert len(two) == 625 and len(set(two)) == 625
    assert two[0] == ((0, 1), (1, 0))
    assert len(combine_permutations([a, b, c], 625)) == 8**3
    with pytest.raises(ValueError, match='budget'):
        combine_permutations([a], 0)


def test_efficiency_search_hand_example():
    pred = np.array([[3, 3, 1], [2, 5, 2], [7, 7, 7]])
    macs = np.array([4e9, 1e9, 2e9])
    target = pred[:, 0]
    eff = efficiency_search(pred, macs, target)
    assert eff['choice'] == [1, 2, 1]
    assert eff['mean_gmacs'] == pytest.approx((1 + 2 + 1) / 3)
    assert eff['matched'] == 100


def test_segmentation_oracle_per_image_miou(digits_root):
    """mmseg FCN on a dynamic ResNetV1c: per-image mIoU by hand."""
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(
        ConfigDict(  # attribute access to test_cfg
            type='EncoderDecoder',
            data_preprocessor=dict(
                type='SegDataPreProcessor',
                mean=[123.7, 116.3, 103.5],
                std=[58.4, 57.1, 57.4],
                bgr_to_rgb=True,
                size=(96, 96)),
            backbone=dict(
                type='ResNetV1c',
                depth=18,
                stem_channels=8,
                base_channels=8,
                out_indices=(3, )),
            decode_head=dict(
                type='FCNHead',
                in_channels=64,
                channels=8,
                num_convs=1,
                num_classes=11,
                in_index=0,
                norm_cfg=dict(type='BN'),
                loss_decode=dict(type='CrossEntropyLoss')),
            test_cfg=dict(mode='whole')))
    model.eval()
    dyn = convert_to_dynamic(model.backbone, options={'stride': (1, 2)})
    perms = [p for p in dyn.permutations('stride') if p[:2] == ((1, ), (2, ))]
    loader = Runner.build_dataloader(
        dict(
            batch_size=2,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='DigitsVOCDataset',
                data_root=digits_root,
                data_prefix=dict(
                    img_path='JPEGImages', seg_map_path='SegmentationClass'),
                ann_file='ImageSets/Segmentation/val.txt',
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations'),
                    dict(type='PackSegInputs')
                ])))
    res = run_oracle(model, loader, perms, ('stride', ), progress=False)
    assert 'pred' not in res and res['q'].shape == (4, len(perms))
    q_ref = np.zeros_like(res['q'])
    for j, p in enumerate(perms):
        dyn.apply(p)
        for s in range(4):
            with torch.no_grad():
                out = model.test_step(
                    dict(
                        inputs=[loader.dataset[s]['inputs']],
                        data_samples=[loader.dataset[s]['data_samples']]))[0]
            pred = out.pred_sem_seg.data.numpy().ravel()
            gt = out.gt_sem_seg.data.numpy().ravel()
            keep = gt != 255
            ious = []
            for c in range(11):
                union = ((pred == c) | (gt == c))[keep].sum()
                if union:
                    ious.append(((pred == c) & (gt == c))[keep].sum() / union)
            q_ref[s, j] = np.mean(ious)
    dyn.reset()
    np.testing.assert_allclose(res['q'], q_ref, rtol=1e-5)
    summary = oracle_summary(res['q'], perms,
                             perms.index(dyn.default('stride')), dyn.names)
    assert summary['best'] == pytest.approx(100 * q_ref.max(1).mean())
    assert summary['worst'] == pytest.approx(100 * q_ref.min(1).mean())
    assert summary['best'] >= summary['median'] >= summary['worst']


def test_ties_go_to_the_first_permutation_everywhere():
    """About half the permutations of an image tie at its best quality
    (e.g. every correct one of a saturated classifier). The summary's best
    case, its per-layer preferences and the efficiency targets all take the
    first of them in permutation order (the summary used to take the last,
    the efficiency target the first)."""
    from mmdynopool.analysis.oracle import ranked_permutations
    perms = [((1, ), ), ((2, ), ), ((3, ), ), ((4, ), )]
    q = np.array([[0.5, 2.0, 2.0, 0.5], [1.0, 1.0, 0.2, 0.2]])
    pred = np.array([[0, 1, 2, 0], [3, 4, 5, 5]])
    labels = np.array([1, 3])
    ranked = ranked_permutations(q)
    assert ranked['best'].tolist() == [1, 0]
    assert ranked['worst'].tolist() == [0, 2]
    assert ranked['median'].tolist() == [3, 3]  # sorted (q, index), (P-1)//2
    summary = oracle_summary(q, perms, 0, ['A'], pred, labels)
    assert summary['preferences'] == {'A': {'1': 50.0, '2': 50.0}}
    assert summary['best'] == 100.0  # pred 1 (= label) and pred 3 (= label)
    macs = np.array([4e9, 3e9, 1e9, 1e9])
    eff = efficiency_summary(
        dict(q=q, pred=pred, labels=labels), macs, 0, 'best')
    # Targets: permutation 1 (pred 1) and 0 (pred 3).
    assert eff['target_gmacs'] == pytest.approx((3 + 4) / 2)
    assert eff['accuracy'] == 100.0


def test_efficiency_summary_static_and_best_by_hand():
    # 3 samples x 3 permutations; permutation 0 is the trained one.
    pred = np.array([[3, 3, 1], [2, 5, 2], [7, 7, 7]])
    q = np.array([[1.9, 1.2, 0.1], [0.3, 1.8, 0.2], [1.5, 1.6, 1.7]])
    results = dict(pred=pred, q=q, labels=np.array([3, 5, 7]))
    macs = np.array([4e9, 1e9, 2e9])
    static = efficiency_summary(results, macs, 0, 'static')
    # Emulating permutation 0: cheapest matches 1, 2, 1 -> (1 + 2 + 1) / 3.
    assert static == pytest.approx(
        dict(
            target='static',
            accuracy=200 / 3,
            target_gmacs=4.0,
            mean_gmacs=4 / 3,
            reduction=3.0))
    best = efficiency_summary(results, macs, 0, 'best')
    # Best per sample: 0, 1, 2 (all correct), cost (4 + 1 + 2) / 3; the
    # cheapest with the same predictions: 1 (3), 1 (5), 1 (7).
    assert best == pytest.approx(
        dict(
            target='best',
            accuracy=100.0,
            target_gmacs=7 / 3,
            mean_gmacs=1.0,
            reduction=7 / 3))
    with pytest.raises(ValueError, match="'static' or 'best'"):
        efficiency_summary(results, macs, 0, 'worst')
    with pytest.raises(ValueError, match='needs class predictions'):
        efficiency_summary(dict(q=q), macs, 0, 'static')


class _Layers:
    """A stand-in for DynamicLayers: one conv whose stride a permutation
    sets."""

    def __init__(self, conv):
        self.conv, self.applied = conv, []

    def apply(self, p, attributes):
        self.applied.append(p)
        self.conv.stride = p[0]

    def reset(self):
        self.conv.stride = (1, 1)


class _Classifier(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x, mode='tensor'):
        return self.conv(x)


def test_permutation_macs_by_hand():
    model = _Classifier()
    dyn = _Layers(model.conv)
    macs = permutation_macs(model, dyn, [((1, 1), ), ((2, 2), ), ((1, 2), )],
                            ('stride', ), (8, 8))
    # 4 channels x 27 MACs per output value, 8x8, 4x4 and 8x4 outputs.
    np.testing.assert_array_equal(macs, np.array([64, 16, 32]) * 4 * 27)
    assert model.conv.stride == (1, 1)  # reset afterwards
    assert isinstance(macs, np.ndarray) and not torch.is_tensor(macs)
