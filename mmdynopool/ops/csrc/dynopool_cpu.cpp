// Fused DynOPool ('max') for the CPU, as dispatcher ops
// mmdynopool_cpu::dynopool_max_forward / dynopool_max_backward: bilinear
// sampling of the four query points of every output cell, their max, and the
// backward pass for the input and for the output size (hence alpha), in one
// pass each.
//
// The numbers are those of the device-generic PyTorch implementation
// (mmdynopool/ops/dynopool.py, its module docstring has the definitions):
// * query positions as exact fractions ((2k + 1) n_in - 2 n) / (4 n), the
//   weight rem / (4 n) rounded once to T, border clamped;
// * a value is interpolated along the height first, then the width, each as
//   near + (far - near) * w_far in T from the pixel of the larger weight
//   (lerp below; compiled with -ffp-contract=off, so no fused multiply-add
//   changes the rounding): forward values, winners and ties are
//   bit-identical to the generic path;
// * winner: the first maximum in row-major order (the first NaN, if any);
//   code = winner | tied-mask << 2;
// * size derivative: per tied candidate the one-sided slopes D+ (left) and
//   D- (right) times dt/dn; the cell takes max D+ and min D- over its tied
//   candidates; 'central' their mean, 'one_sided' min D-.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

namespace {

// v0 * w0 + v1 * w1 (w0 + w1 = 1) as near + (far - near) * w_far, near
// being the value of the larger weight (at equal weights the smaller value):
// exact on a pixel, in a constant region and under mirror symmetry.
template <typename T>
inline T lerp(T v0, T v1, T w0, T w1) {
  if (w0 > w1) return v0 + (v1 - v0) * w1;
  if (w1 > w0) return v1 + (v0 - v1) * w0;
  if (std::isnan(v0) || std::isnan(v1)) return v0 + v1;
  const T lo = v1 < v0 ? v1 : v0, hi = v1 < v0 ? v0 : v1;
  return lo + (hi - lo) * w0;
}

template <typename T>
struct AxisTables {
  std::vector<int64_t> i0, i1, lo, mid, hi;
  std::vector<T> w0, w1;
  std::vector<uint8_t> aligned;
  std::vector<double> c_right, c_left;

  AxisTables(int64_t n_in, int64_t n_out) {
    const int64_t q = 2 * n_out, last = n_in - 1, den = 4 * n_out;
    i0.resize(q); i1.resize(q); lo.resize(q); mid.resize(q); hi.resize(q);
    w0.resize(q); w1.resize(q); aligned.resize(q);
    c_right.resize(q); c_left.resize(q);
    auto clampi = [last](int64_t v) {
      return v < 0 ? int64_t(0) : (v > last ? last : v);
    };
    for (int64_t k = 0; k < q; ++k) {
      const int64_t num = (2 * k + 1) * n_in - 2 * n_out;
      int64_t p = num / den;
      if (num % den != 0 && num < 0) --p;  // floor division
      const int64_t rem = num - p * den;
      const bool inside = num >= 0 && num <= last * den;
      i0[k] = clampi(p);
      i1[k] = clampi(p + 1);
      w1[k] = inside ? static_cast<T>(static_cast<double>(rem) / den) : T(0);
      w0[k] = inside ? static_cast<T>(static_cast<double>(den - rem) / den)
                     : T(1);
      lo[k] = clampi(p - 1);
      mid[k] = clampi(p);
      hi[k] = clampi(p + 1);
      aligned[k] = rem == 0;
      const double dtdn = (n_in / 2.0) *
          (-(2.0 * k + 1.0) / (2.0 * static_cast<double>(n_out * n_out)));
      c_right[k] = (num >= 0 && num < last * den) ? dtdn : 0.0;
      c_left[k] = (num > 0 && num <= last * den) ? dtdn : 0.0;
    }
  }
};

template <typename T>
void forward_impl(const T* x, T* out, uint8_t* code, int64_t planes,
                  int64_t H, int64_t W, int64_t h, int64_t w) {
  const AxisTables<T> ty(H, h), tx(W, w);
  at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    // The two query rows of an output row, interpolated along the height
    // over all W columns, then sampled at the 2w query columns.
    std::vector<T> rows(2 * W), vals(4 * w);
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * H * W;
      T* op = out + p * h * w;
      uint8_t* cp = code + p * h * w;
      for (int64_t i = 0; i < h; ++i) {
        for (int a = 0; a < 2; ++a) {
          const int64_t k = 2 * i + a;
          const T* r0 = xp + ty.i0[k] * W;
          const T* r1 = xp + ty.i1[k] * W;
          const T wy0 = ty.w0[k], wy1 = ty.w1[k];
          T* row = rows.data() + a * W;
          for (int64_t c = 0; c < W; ++c) row[c] = lerp(r0[c], r1[c], wy0, wy1);
          T* v = vals.data() + a * 2 * w;
          for (int64_t l = 0; l < 2 * w; ++l) {
            v[l] = lerp(row[tx.i0[l]], row[tx.i1[l]], tx.w0[l], tx.w1[l]);
          }
        }
        for (int64_t j = 0; j < w; ++j) {
          const T q[4] = {vals[2 * j], vals[2 * j + 1], vals[2 * w + 2 * j],
                          vals[2 * w + 2 * j + 1]};
          T best = q[0];
          uint8_t arg = 0;
          for (uint8_t m = 1; m < 4; ++m) {
            if (q[m] > best || (std::isnan(q[m]) && !std::isnan(best))) {
              best = q[m];
              arg = m;
            }
          }
          uint8_t c = arg;
          for (uint8_t m = 0; m < 4; ++m) {
            if (q[m] == best || m == arg) c |= uint8_t(1) << (2 + m);
          }
          op[i * w + j] = best;
          cp[i * w + j] = c;
        }
      }
    }
  });
}

// Value at (row r, query column l): interpolated along the width.
template <typename T>
inline T along_w(const T* xp, int64_t W, int64_t r, const AxisTables<T>& tx,
                 int64_t l) {
  const T* row = xp + r * W;
  return lerp(row[tx.i0[l]], row[tx.i1[l]], tx.w0[l], tx.w1[l]);
}

// Value at (query row k, column c): interpolated along the height.
template <typename T>
inline T along_h(const T* xp, int64_t W, const AxisTables<T>& ty, int64_t k,
                 int64_t c) {
  return lerp(xp[ty.i0[k] * W + c], xp[ty.i1[k] * W + c], ty.w0[k],
              ty.w1[k]);
}

template <typename T>
void backward_impl(const T* x, const T* gout, const uint8_t* code, T* gx,
                   double* gsize, int64_t planes, int64_t H, int64_t W,
                   int64_t h, int64_t w, bool need_x, bool need_size,
                   bool central) {
  const AxisTables<T> ty(H, h), tx(W, w);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> part(2 * planes, 0.0);
  at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * H * W;
      T* gp = need_x ? gx + p * H * W : nullptr;
      const T* go = gout + p * h * w;
      const uint8_t* cp = code + p * h * w;
      double acc_h = 0.0, acc_w = 0.0;
      for (int64_t i = 0; i < h; ++i) {
        for (int64_t j = 0; j < w; ++j) {
          const T g = go[i * w + j];
          if (g == 0) continue;
          const uint8_t c = cp[i * w + j];
          const int m_win = c & 3;
          if (need_x) {
            const int64_t k = 2 * i + (m_win >> 1), l = 2 * j + (m_win & 1);
            const int64_t r0 = ty.i0[k] * W, r1 = ty.i1[k] * W;
            const int64_t c0 = tx.i0[l], c1 = tx.i1[l];
            gp[r0 + c0] += g * (ty.w0[k] * tx.w0[l]);
            gp[r0 + c1] += g * (ty.w0[k] * tx.w1[l]);
            gp[r1 + c0] += g * (ty.w1[k] * tx.w0[l]);
            gp[r1 + c1] += g * (ty.w1[k] * tx.w1[l]);
          }
          if (!need_size) continue;
          double plus_h = -inf, minus_h = inf, plus_w = -inf, minus_w = inf;
          for (int m = 0; m < 4; ++m) {
            if (!((c >> (2 + m)) & 1)) continue;
            const int64_t k = 2 * i + (m >> 1), l = 2 * j + (m & 1);
            // Along the height: rows p - 1, p, p + 1 across the width.
            const T vm = along_w(xp, W, ty.mid[k], tx, l);
            const T right_h = along_w(xp, W, ty.hi[k], tx, l) - vm;
            const T left_h =
                ty.aligned[k] ? vm - along_w(xp, W, ty.lo[k], tx, l)
                              : right_h;
            // Along the width: columns p - 1, p, p + 1 across the height.
            const T um = along_h(xp, W, ty, k, tx.mid[l]);
            const T right_w = along_h(xp, W, ty, k, tx.hi[l]) - um;
            const T left_w =
                tx.aligned[l] ? um - along_h(xp, W, ty, k, tx.lo[l])
                              : right_w;
            const double dph = static_cast<double>(
                left_h * static_cast<T>(ty.c_left[k]));
            const double dmh = static_cast<double>(
                right_h * static_cast<T>(ty.c_right[k]));
            const double dpw = static_cast<double>(
                left_w * static_cast<T>(tx.c_left[l]));
            const double dmw = static_cast<double>(
                right_w * static_cast<T>(tx.c_right[l]));
            plus_h = std::max(plus_h, dph);
            minus_h = std::min(minus_h, dmh);
            plus_w = std::max(plus_w, dpw);
            minus_w = std::min(minus_w, dmw);
          }
          const double dh = central ? (plus_h + minus_h) / 2 : minus_h;
          const double dw = central ? (plus_w + minus_w) / 2 : minus_w;
          acc_h += static_cast<double>(g) * dh;
          acc_w += static_cast<double>(g) * dw;
        }
      }
      part[2 * p] = acc_h;
      part[2 * p + 1] = acc_w;
    }
  });
  double sh = 0.0, sw = 0.0;
  for (int64_t p = 0; p < planes; ++p) {
    sh += part[2 * p];
    sw += part[2 * p + 1];
  }
  gsize[0] = sh;
  gsize[1] = sw;
}

std::tuple<at::Tensor, at::Tensor> dynopool_max_forward(const at::Tensor& x,
                                                        int64_t h,
                                                        int64_t w) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous() && x.device().is_cpu(),
              "dynopool_max_forward: contiguous 4-D CPU input expected");
  TORCH_CHECK(h >= 1 && w >= 1, "dynopool_max_forward: h, w >= 1 expected");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto out = at::empty({N, C, h, w}, x.options());
  auto code = at::empty({N, C, h, w}, x.options().dtype(at::kByte));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dynopool_max_forward", [&] {
    forward_impl<scalar_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                           code.data_ptr<uint8_t>(), N * C, H, W, h, w);
  });
  return {out, code};
}

std::tuple<at::Tensor, at::Tensor> dynopool_max_backward(
    const at::Tensor& x, const at::Tensor& grad_out, const at::Tensor& code,
    bool need_x, bool need_size, bool central) {
  TORCH_CHECK(x.is_contiguous() && grad_out.is_contiguous() &&
                  code.is_contiguous() && code.scalar_type() == at::kByte,
              "dynopool_max_backward: contiguous tensors expected");
  TORCH_CHECK(grad_out.scalar_type() == x.scalar_type(),
              "dynopool_max_backward: grad_out and x dtypes differ");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t h = code.size(2), w = code.size(3);
  auto gx = need_x ? at::zeros_like(x) : at::empty({0}, x.options());
  auto gsize = at::zeros({2}, x.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dynopool_max_backward", [&] {
    backward_impl<scalar_t>(
        x.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(),
        code.data_ptr<uint8_t>(),
        need_x ? gx.data_ptr<scalar_t>() : nullptr,
        gsize.data_ptr<double>(), N * C, H, W, h, w, need_x, need_size,
        central);
  });
  return {gx, gsize};
}

}  // namespace

TORCH_LIBRARY(mmdynopool_cpu, m) {
  m.def("dynopool_max_forward(Tensor x, int h, int w) -> "
        "(Tensor, Tensor)");
  m.def("dynopool_max_backward(Tensor x, Tensor grad_out, Tensor code, "
        "bool need_x, bool need_size, bool central) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mmdynopool_cpu, CPU, m) {
  m.impl("dynopool_max_forward", &dynopool_max_forward);
  m.impl("dynopool_max_backward", &dynopool_max_backward);
}
