"""Comprehensive ("oracle") evaluation of inference-time dynamic models
(*The Untapped Potential of Off-the-Shelf CNNs*, WACV 2022, Sec. 3.3-4.6):
the scores, the evaluation loop and the cost of each permutation.
``tools/analysis/oracle.py`` runs a whole study from a config;
:func:`~mmdynopool.analysis.plot_oracle` draws it.

Every sample is run through every option permutation. For classification
the quality of permutation ``c`` on sample ``(x, y)`` is Eq. (1)::

    q_c = p_c(y) + 1[argmax p_c = y]

so any correct prediction beats every wrong one. The sample's *best*,
*median* and *worst* permutations are the highest, the median (the lower
one for an even count, i.e. sorted index ``(P - 1) // 2``) and the lowest
quality; best / median / worst top-1 is the mean correctness of those.
For segmentation the quality is the image's mIoU (classes present in
prediction or ground truth), reported the same way.

Ties (often half the permutations of an image share its best quality): the
first in permutation order wins, for the best and the worst case alike, and
the median is taken over the qualities sorted with ties in permutation
order. :func:`ranked_permutations` is that rule, and every score, preference,
efficiency target and ``permutations.csv`` count uses it.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from ..engine.gmacs import count_macs
from ..models.dynamic import DynamicLayers, permutation_key

__all__ = [
    'classification_quality', 'ranked_permutations', 'oracle_summary',
    'greedy_accumulation', 'combine_permutations', 'efficiency_search',
    'run_oracle', 'permutation_macs', 'efficiency_summary'
]


def classification_quality(probs: torch.Tensor,
                           labels: torch.Tensor) -> torch.Tensor:
    """Eq. (1): ``p(true class) + 1[correct]`` per sample, shape ``(N, )``.

    Args:
        probs (Tensor): Class probabilities, ``(N, C)``.
        labels (Tensor): True classes, ``(N, )``.

    Returns:
        Tensor: The quality per sample, ``(N, )``.

    Example:
        >>> import torch
        >>> from mmdynopool.analysis import classification_quality
        >>> classification_quality(torch.tensor([[0.6, 0.4], [0.7, 0.3]]),
        ...                        torch.tensor([1, 0]))
        tensor([0.4000, 1.7000])
    """
    p_true = probs.gather(1, labels[:, None])[:, 0]
    return p_true + (probs.argmax(1) == labels).to(probs.dtype)


def ranked_permutations(q: np.ndarray) -> Dict[str, np.ndarray]:
    """Per sample (row of ``q``), the column of its ``best``, ``median``
    and ``worst`` permutation; ties go to the first column (the module
    docstring's rule).

    Args:
        q (np.ndarray): Quality per sample and permutation, ``(N, P)``.

    Returns:
        dict: ``best``, ``median`` and ``worst``: a column index per sample,
        ``(N, )`` each.

    Example:
        >>> import numpy as np
        >>> from mmdynopool.analysis import ranked_permutations
        >>> r = ranked_permutations(np.array([[0.5, 2.0, 2.0, 0.5]]))
        >>> r['best'], r['median'], r['worst']
        (array([1]), array([3]), array([0]))
    """
    # A stable sort keeps equal qualities in permutation order.
    order = np.argsort(q, axis=1, kind='stable')
    return dict(
        best=np.asarray(q).argmax(1),
        median=order[:, (q.shape[1] - 1) // 2],
        worst=order[:, 0])


def oracle_summary(q: np.ndarray,
                   permutations: Sequence[tuple],
                   default_index: int,
                   layer_names: Sequence[str],
                   pred: Optional[np.ndarray] = None,
                   labels: Optional[np.ndarray] = None) -> dict:
    """Best / median / worst / static scores, per-layer preferences and,
    for classification, unique predictions per sample.

    Args:
        q (np.ndarray): Quality, ``(num_samples, num_permutations)``.
        permutations (Sequence[tuple]): The permutations (columns of ``q``).
        default_index (int): Column of the trained configuration.
        layer_names (Sequence[str]): Dynamic layer names (``'A'``...).
        pred (np.ndarray, optional): Predicted classes, like ``q``.
        labels (np.ndarray, optional): True classes ``(num_samples, )``.

    Returns:
        dict: ``static / best / median / worst`` in percent (top-1 with
        ``pred``, else mean quality x 100, e.g. mean per-image mIoU),
        ``preferences`` (per layer: option -> share of samples whose best
        permutation uses it, percent), ``unique_predictions`` (histogram:
        count -> samples) and ``num_samples``.
    """
    rows = np.arange(q.shape[0])
    if pred is not None:
        score = (pred == labels[:, None]).astype(np.float64)
    else:
        score = q.astype(np.float64)
    summary = dict(
        num_samples=int(q.shape[0]),
        num_permutations=int(q.shape[1]),
        static=float(score[:, default_index].mean() * 100))
    ranked = ranked_permutations(q)
    for case, idx in ranked.items():
        summary[case] = float(score[rows, idx].mean() * 100)
    preferences = {}
    for i, name in enumerate(layer_names):
        chosen = [
            permutation_key([permutations[j][i]]) for j in ranked['best']
        ]
        values, counts = np.unique(chosen, return_counts=True)
        preferences[name] = {
            str(v): round(float(c) / len(chosen) * 100, 2)
            for v, c in zip(values, counts)
        }
    summary['preferences'] = preferences
    if pred is not None:
        uniq = np.array([len(np.unique(p)) for p in pred])
        values, counts = np.unique(uniq, return_counts=True)
        summary['unique_predictions'] = {
            int(v): int(c)
            for v, c in zip(values, counts)
        }
    return summary


def greedy_accumulation(correct: np.ndarray) -> Dict[str, list]:
    """Best-case accuracy as permutations are added greedily (Fig. 3).

    Each step adds the permutation that makes the most not-yet-covered
    samples correct (ties: the more accurate permutation alone); once no
    permutation adds any, the rest follow by accuracy alone.

    Args:
        correct (np.ndarray): bool ``(num_samples, num_permutations)``.

    Returns:
        dict: ``order`` (permutation indices) and ``accuracy`` (percent
        best-case top-1 using the first ``k + 1`` of them).
    """
    correct = np.asarray(correct, dtype=bool)
    num_samples, num_perms = correct.shape
    alone = correct.sum(0)
    covered = np.zeros(num_samples, dtype=bool)
    used = np.zeros(num_perms, dtype=bool)
    order, accuracy = [], []
    while not used.all():
        gains = correct[~covered].sum(0).astype(np.int64)
        if gains[~used].max() == 0:
            break
        key = np.where(used, -1, gains * (num_samples + 1) + alone)
        j = int(key.argmax())
        used[j] = True
        covered |= correct[:, j]
        order.append(j)
        accuracy.append(covered.mean() * 100)
    rest = [int(j) for j in np.argsort(-alone, kind='stable') if not used[j]]
    order += rest
    accuracy += [covered.mean() * 100] * len(rest)
    return dict(order=order, accuracy=[float(a) for a in accuracy])


def combine_permutations(ranked: Sequence[Sequence[tuple]],
                         budget: int = 625) -> List[tuple]:
    """Eq. (2): with ``m`` attributes each keeps its ``floor(budget ** (1 /
    m))`` most important single-attribute permutations (greedy order), and
    their Cartesian product is evaluated (625 -> 25 x 25, 8 x 8 x 8).

    Args:
        ranked: Per attribute, its permutations (tuples over layers of
            1-tuples) best first, e.g. ``greedy_accumulation``'s order.
        budget (int): Most permutations in total. Default: 625.

    Returns:
        list[tuple]: Permutations over layers of per-layer tuples holding one
        value per attribute, in the order of ``ranked``.

    Example:
        >>> from mmdynopool.analysis import combine_permutations
        >>> a = [((1, ), (2, )), ((2, ), (2, ))]
        >>> b = [((3, ), (5, )), ((1, ), (1, ))]
        >>> combine_permutations([a, b], budget=1)
        [((1, 3), (2, 5))]
    """
    if budget < 1:
        raise ValueError(f'budget must be >= 1, got {budget}')
    m = len(ranked)
    per = int(np.floor(budget**(1 / m) + 1e-9))
    combined = []
    for parts in np.ndindex(*([per] * m)):
        chosen = [
            ranked[a][parts[a]] for a in range(m) if parts[a] < len(ranked[a])
        ]
        if len(chosen) < m:
            continue
        combined.append(
            tuple(
                tuple(v for p in chosen for v in p[layer])
                for layer in range(len(chosen[0]))))
    return combined


def efficiency_search(pred: np.ndarray, macs: np.ndarray,
                      target: np.ndarray) -> dict:
    """Per sample, the cheapest permutation that predicts what ``target``
    predicts (Sec. 4.6): the efficiency bound of emulating that model.

    Args:
        pred (np.ndarray): ``(num_samples, num_permutations)`` classes.
        macs (np.ndarray): ``(num_permutations, )`` MACs per sample.
        target (np.ndarray): ``(num_samples, )`` the emulated predictions.

    Returns:
        dict: ``choice`` per sample, ``mean_gmacs`` over samples and
        ``matched`` (share of samples some permutation matches, percent).
    """
    match = pred == np.asarray(target)[:, None]
    cost = np.where(match, np.asarray(macs, dtype=np.float64)[None], np.inf)
    choice = cost.argmin(1)
    best = cost[np.arange(len(choice)), choice]
    ok = np.isfinite(best)
    return dict(
        choice=choice.tolist(),
        mean_gmacs=float(best[ok].mean() / 1e9) if ok.any() else float('nan'),
        matched=float(ok.mean() * 100))


def _segmentation_quality(samples, num_classes: int, ignore_index: int):
    """Per-image mIoU and per-class intersections / unions."""
    from mmseg.evaluation import IoUMetric
    metric = IoUMetric(ignore_index=ignore_index)
    quality, inter, union = [], [], []
    for s in samples:
        pred = s.pred_sem_seg.data.squeeze()
        label = s.gt_sem_seg.data.squeeze().to(pred)
        i, u, _, _ = metric.intersect_and_union(pred, label, num_classes,
                                                ignore_index)
        present = u > 0
        quality.append(
            float((i[present] / u[present]).mean()) if present.any() else 0.0)
        inter.append(i.cpu().numpy())
        union.append(u.cpu().numpy())
    return quality, np.stack(inter), np.stack(union)


def run_oracle(model: torch.nn.Module,
               dataloader: DataLoader,
               permutations: Sequence[tuple],
               attributes: Sequence[str],
               out_file: Optional[str] = None,
               save_interval: int = 20,
               progress: bool = True) -> Dict[str, np.ndarray]:
    """Run every sample of ``dataloader`` through every permutation.

    Works with mmpretrain classifiers (``mode='tensor'`` logits) and mmseg
    segmentors (``test_step``; per-image mIoU). With ``out_file`` the arrays
    are saved every ``save_interval`` batches and a run resumes from them
    (the dataloader must not shuffle).

    Args:
        model: Converted model (:func:`convert_to_dynamic`).
        dataloader: Validation dataloader (mmengine style batches).
        permutations: Permutations to evaluate (columns of the results).
        attributes: The attributes the permutations set.
        out_file (str, optional): ``.npz`` file for partial / final results.
        save_interval (int): Batches between saves. Default: 20.
        progress (bool): Show mmengine's progress bar. Default: True.

    Returns:
        dict: ``q`` ``(S, P)``; for classification ``pred`` ``(S, P)`` and
        ``labels``; for segmentation ``intersect`` / ``union`` ``(P, C)``
        summed over images.
    """
    from mmengine.utils import ProgressBar
    dyn = DynamicLayers.from_model(model)
    keys = [permutation_key(p) for p in permutations]
    segmentation = hasattr(model, 'decode_head')
    dataset = dataloader.dataset
    sampler = getattr(dataloader, 'sampler', None)
    if getattr(sampler, 'shuffle', False):
        raise ValueError('run_oracle needs a dataloader without shuffling '
                         '(sampler.shuffle=False) to resume and to align '
                         'samples across permutations')
    total = len(dataset)
    state = dict(q=[], pred=[], labels=[])
    inter = union = None
    if out_file and osp.exists(out_file):
        old = np.load(out_file, allow_pickle=False)
        if list(old['keys']) != keys:
            raise ValueError(f'{out_file} holds other permutations; delete '
                             'it or choose another work dir')
        state = {k: [old[k]] for k in ('q', 'pred', 'labels') if k in old}
        state.setdefault('pred', [])
        state.setdefault('labels', [])
        if segmentation:
            inter, union = old['intersect'], old['union']
    done = sum(len(a) for a in state['q'])
    if done < total:
        loader = DataLoader(
            Subset(dataset, range(done, total)),
            batch_size=dataloader.batch_size,
            collate_fn=dataloader.collate_fn,
            num_workers=dataloader.num_workers)
        bar = ProgressBar(total - done) if progress else None
        model.eval()

        def save():
            if not out_file:
                return
            arrays = {k: np.concatenate(v) for k, v in state.items() if v}
            if segmentation:
                arrays.update(intersect=inter, union=union)
            tmp = out_file + '.tmp.npz'
            np.savez(tmp, keys=np.array(keys), **arrays)
            os.replace(tmp, out_file)

        for i, data in enumerate(loader):
            q_b, pred_b = [], []
            with torch.no_grad():
                if segmentation:
                    for p in permutations:
                        dyn.apply(p, attributes)
                        samples = model.test_step(data)
                        num_classes = model.decode_head.num_classes
                        ignore = model.decode_head.ignore_index
                        qs, ii, uu = _segmentation_quality(
                            samples, num_classes, ignore)
                        q_b.append(qs)
                        if inter is None:
                            inter = np.zeros((len(keys), num_classes))
                            union = np.zeros((len(keys), num_classes))
                        j = len(q_b) - 1
                        inter[j] += ii.sum(0)
                        union[j] += uu.sum(0)
                else:
                    batch = model.data_preprocessor(data, False)
                    labels = torch.cat(
                        [s.gt_label for s in batch['data_samples']]).long()
                    for p in permutations:
                        dyn.apply(p, attributes)
                        logits = model(batch['inputs'], mode='tensor')
                        if isinstance(logits, (list, tuple)):
                            logits = logits[-1]
                        probs = F.softmax(logits.float(), dim=1)
                        q = classification_quality(probs, labels)
                        q_b.append(q.cpu().numpy())
                        pred_b.append(probs.argmax(1).cpu().numpy())
                    state['labels'].append(labels.cpu().numpy())
                    state['pred'].append(np.stack(pred_b, 1).astype(np.int32))
            state['q'].append(np.stack(q_b, 1).astype(np.float32))
            dyn.reset()
            if bar is not None:
                for _ in range(len(q_b[0])):
                    bar.update()
            if (i + 1) % save_interval == 0:
                save()
        save()
        if progress:
            print()
    results = {k: np.concatenate(v) for k, v in state.items() if v}
    if segmentation:
        results.update(intersect=inter, union=union)
    return results


def permutation_macs(model: torch.nn.Module, dyn, permutations: Sequence,
                     attributes: Sequence[str],
                     input_size: Sequence[int]) -> np.ndarray:
    """MACs of one ``(1, 3, H, W)`` image through every permutation (conv
    and linear layers, :func:`~mmdynopool.engine.count_macs`); the layers
    are reset afterwards.

    Args:
        model (nn.Module): The mmengine model (called with
            ``mode='tensor'``).
        dyn (DynamicLayers): Its dynamic layers.
        permutations (Sequence): Option permutations, as
            :meth:`DynamicLayers.apply` takes them.
        attributes (Sequence[str]): The attributes they set.
        input_size (Sequence[int]): ``(H, W)``.

    Returns:
        np.ndarray: MACs per permutation.
    """
    param = next(model.parameters())
    x = torch.zeros(1, 3, *input_size, device=param.device)
    macs = []
    try:
        for p in permutations:
            dyn.apply(p, attributes)
            macs.append(
                sum(
                    count_macs(model, x,
                               lambda t: model(t, mode='tensor')).values()))
    finally:
        dyn.reset()
    return np.array(macs)


def efficiency_summary(results: Dict[str, np.ndarray], macs: np.ndarray,
                       default_index: int, target: str) -> Dict:
    """Sec. 4.6: the cost of emulating the ``'static'`` (trained) or the
    ``'best'``-case model (ties: the first best permutation, as in the
    summary) with the cheapest permutation that predicts what it predicts,
    per sample.

    Args:
        results (dict): :func:`run_oracle`'s ``q``, ``pred`` and ``labels``.
        macs (np.ndarray): MACs per permutation
            (:func:`permutation_macs`).
        default_index (int): The trained permutation's index.
        target (str): ``'static'`` or ``'best'``.

    Returns:
        dict: ``target``, its ``accuracy`` (%), ``target_gmacs``,
        ``mean_gmacs`` of the emulation and ``reduction``
        (``target_gmacs / mean_gmacs``).
    """
    if target not in ('static', 'best'):
        raise ValueError(f"efficiency target must be 'static' or 'best', "
                         f'got {target!r}')
    if 'pred' not in results:
        raise ValueError('--efficiency needs class predictions '
                         '(a classification config)')
    pred, q = results['pred'], results['q']
    rows = np.arange(len(results['labels']))
    if target == 'static':
        predicted = pred[:, default_index]
        target_macs = macs[default_index]
    else:
        best = ranked_permutations(q)['best']
        predicted = pred[rows, best]
        target_macs = macs[best].mean()
    eff = efficiency_search(pred, macs, predicted)
    return dict(
        target=target,
        accuracy=float((predicted == results['labels']).mean() * 100),
        target_gmacs=float(target_macs / 1e9),
        mean_gmacs=eff['mean_gmacs'],
        reduction=float(target_macs / 1e9 / eff['mean_gmacs']))
