// Fused DynOPool (max) for the CPU: bilinear sampling of the four query
// points of every output cell, their max, and the backward pass for the
// input and for the output size (hence alpha), in one pass each.
//
// Conventions (see mmdynopool/models/layers/dynopool.py):
// * forward values and the input gradient follow
//   F.interpolate(size=(2h, 2w), mode='bilinear', align_corners=False)
//   followed by a 2x2 max pool (ties: the first query in row-major order,
//   NaN wins, like max_pool2d);
// * the size gradient is the derivative of the sampled value w.r.t. the
//   query position, times d g_k / d n = -(2k + 1) / (2 n^2), with one of two
//   conventions on pixel-aligned queries:
//   - one-sided: grid_sampler_2d's backward for padding_mode='border',
//     align_corners=False (zero where the border clip is active, the side
//     that floating-point rounding of the coordinate picks on pixel centres);
//   - central: positions as exact fractions ((2k + 1) n_in - 2 n) / (4 n);
//     on a pixel centre the mean of both one-sided slopes (the outer side of
//     a border pixel is flat), elsewhere the plain slope, zero outside.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

namespace {

template <typename T>
struct AxisTables {
  // forward / input gradient (interpolate convention)
  std::vector<int64_t> i0, i1;
  std::vector<T> w1;
  // size gradient: the value along this axis is interpolated between g0 and
  // g1 with weight gw (used by the other axis's derivative); the derivative
  // along this axis is (x[d_hi] - x[d_lo]) * mult, where mult holds the
  // slope factor, d pixel / d g and d g / d n.
  std::vector<int64_t> g0, g1, d_lo, d_hi;
  std::vector<T> gw;
  std::vector<double> mult;
  // 1 where (d_lo, d_hi) == (g0, g1): the derivative's pixels are the
  // interpolation's, so four shared corner values serve both axes (every
  // one-sided query, every central one off a pixel centre).
  std::vector<uint8_t> same;

  AxisTables(int64_t n_in, int64_t n_out, bool central) {
    const int64_t q = 2 * n_out;
    i0.resize(q); i1.resize(q); w1.resize(q);
    g0.resize(q); g1.resize(q); d_lo.resize(q); d_hi.resize(q);
    gw.resize(q); mult.resize(q); same.resize(q);
    const T scale = static_cast<T>(n_in) / static_cast<T>(q);
    const int64_t last = n_in - 1;
    for (int64_t k = 0; k < q; ++k) {
      T src = scale * (static_cast<T>(k) + static_cast<T>(0.5)) -
              static_cast<T>(0.5);
      if (src < 0) src = 0;
      const int64_t lo = static_cast<int64_t>(src);
      i0[k] = lo;
      i1[k] = lo + (lo < last ? 1 : 0);
      w1[k] = src - static_cast<T>(lo);

      const double dgdn = n_in / 2.0 * (-(2.0 * k + 1.0) /
                                        (2.0 * n_out * n_out));
      if (central) {
        // Exact position num / den; floor division for negative num.
        const int64_t num = (2 * k + 1) * n_in - 2 * n_out, den = 4 * n_out;
        int64_t p0 = num / den;
        if (num % den != 0 && num < 0) --p0;
        const int64_t rem = num - p0 * den;
        const bool inside = num >= 0 && num <= last * den;
        const bool aligned = rem == 0;
        auto clampi = [last](int64_t v) {
          return v < 0 ? int64_t(0) : (v > last ? last : v);
        };
        g0[k] = clampi(p0);
        g1[k] = clampi(p0 + 1);
        gw[k] = inside ? static_cast<T>(static_cast<double>(rem) / den)
                       : T(0);
        d_lo[k] = clampi(aligned ? p0 - 1 : p0);
        d_hi[k] = clampi(p0 + 1);
        mult[k] = inside ? (aligned ? 0.5 : 1.0) * dgdn : 0.0;
      } else {
        const T g = static_cast<T>(-1.0 + (2.0 * k + 1.0) / (2.0 * n_out));
        T pix = ((g + 1) * static_cast<T>(n_in) - 1) / 2;
        double clip = 1.0;
        if (pix <= 0) {
          pix = 0; clip = 0.0;
        } else if (pix >= static_cast<T>(last)) {
          pix = static_cast<T>(last); clip = 0.0;
        }
        const int64_t p0 = static_cast<int64_t>(std::floor(pix));
        g0[k] = p0;
        g1[k] = p0 + 1 <= last ? p0 + 1 : p0;  // its weight is 0 then
        gw[k] = pix - static_cast<T>(p0);
        d_lo[k] = p0;
        d_hi[k] = g1[k];
        mult[k] = clip * dgdn;
      }
      same[k] = d_lo[k] == g0[k] && d_hi[k] == g1[k];
    }
  }
};

template <typename T>
void forward_impl(const T* x, T* out, uint8_t* code, int64_t planes,
                  int64_t H, int64_t W, int64_t h, int64_t w) {
  const AxisTables<T> ty(H, h, false), tx(W, w, false);
  at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    // The two query rows of an output row, interpolated vertically first
    // (a vectorisable pass over W), then sampled at the 2w query columns.
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
          const T wy1 = ty.w1[k], wy0 = 1 - wy1;
          T* row = rows.data() + a * W;
          for (int64_t c = 0; c < W; ++c) row[c] = wy0 * r0[c] + wy1 * r1[c];
          T* v = vals.data() + a * 2 * w;
          for (int64_t l = 0; l < 2 * w; ++l) {
            const T wx1 = tx.w1[l];
            v[l] = (1 - wx1) * row[tx.i0[l]] + wx1 * row[tx.i1[l]];
          }
        }
        for (int64_t j = 0; j < w; ++j) {
          const T q[4] = {vals[2 * j], vals[2 * j + 1], vals[2 * w + 2 * j],
                          vals[2 * w + 2 * j + 1]};
          T best = -std::numeric_limits<T>::infinity();
          uint8_t arg = 0;
          for (uint8_t m = 0; m < 4; ++m) {  // max_pool2d's rule
            if (q[m] > best || std::isnan(q[m])) {
              best = q[m];
              arg = m;
            }
          }
          op[i * w + j] = best;
          cp[i * w + j] = arg;
        }
      }
    }
  });
}

template <typename T>
void backward_impl(const T* x, const T* gout, const uint8_t* code,
                   T* gx, double* gsize, int64_t planes, int64_t H,
                   int64_t W, int64_t h, int64_t w, bool need_x,
                   bool need_size, bool central) {
  const AxisTables<T> ty(H, h, central), tx(W, w, central);
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
          const int64_t k = 2 * i + (c >> 1), l = 2 * j + (c & 1);
          if (need_x) {
            const T wy1 = ty.w1[k], wy0 = 1 - wy1;
            const T wx1 = tx.w1[l], wx0 = 1 - wx1;
            const int64_t r0 = ty.i0[k] * W, r1 = ty.i1[k] * W;
            const int64_t c0 = tx.i0[l], c1 = tx.i1[l];
            gp[r0 + c0] += g * wy0 * wx0;
            gp[r0 + c1] += g * wy0 * wx1;
            gp[r1 + c0] += g * wy1 * wx0;
            gp[r1 + c1] += g * wy1 * wx1;
          }
          if (need_size) {
            const T wx = tx.gw[l], wy = ty.gw[k];
            const int64_t xa = tx.g0[l], xb = tx.g1[l];
            T dy, dx;
            if (ty.same[k] && tx.same[l]) {
              // Four corners shared by both axes' derivatives.
              const T* r0 = xp + ty.g0[k] * W;
              const T* r1 = xp + ty.g1[k] * W;
              const T v00 = r0[xa], v01 = r0[xb], v10 = r1[xa],
                      v11 = r1[xb];
              dy = (1 - wx) * (v10 - v00) + wx * (v11 - v01);
              dx = (1 - wy) * (v01 - v00) + wy * (v11 - v10);
            } else {
              // d/dy: rows d_lo / d_hi, interpolated along x at g0..g1;
              // d/dx: columns d_lo / d_hi, interpolated along y. Terms of
              // zero weight (a pixel-aligned other axis) are not loaded.
              const T* ylo = xp + ty.d_lo[k] * W;
              const T* yhi = xp + ty.d_hi[k] * W;
              dy = (1 - wx) * (yhi[xa] - ylo[xa]);
              if (wx != 0) dy += wx * (yhi[xb] - ylo[xb]);
              const int64_t xlo = tx.d_lo[l], xhi = tx.d_hi[l];
              const T* ra = xp + ty.g0[k] * W;
              dx = (1 - wy) * (ra[xhi] - ra[xlo]);
              if (wy != 0) {
                const T* rb = xp + ty.g1[k] * W;
                dx += wy * (rb[xhi] - rb[xlo]);
              }
            }
            acc_h += static_cast<double>(g * dy) * ty.mult[k];
            acc_w += static_cast<double>(g * dx) * tx.mult[l];
          }
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

}  // namespace

std::vector<torch::Tensor> dynopool_max_forward(torch::Tensor x, int64_t h,
                                                int64_t w) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous() && x.device().is_cpu(),
              "dynopool_max_forward: contiguous 4-D CPU input expected");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto out = torch::empty({N, C, h, w}, x.options());
  auto code = torch::empty({N, C, h, w}, x.options().dtype(torch::kUInt8));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dynopool_max_forward", [&] {
    forward_impl<scalar_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                           code.data_ptr<uint8_t>(), N * C, H, W, h, w);
  });
  return {out, code};
}

std::vector<torch::Tensor> dynopool_max_backward(torch::Tensor x,
                                                 torch::Tensor grad_out,
                                                 torch::Tensor code,
                                                 bool need_x,
                                                 bool need_size,
                                                 bool central) {
  TORCH_CHECK(x.is_contiguous() && grad_out.is_contiguous() &&
                  code.is_contiguous(),
              "dynopool_max_backward: contiguous tensors expected");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t h = code.size(2), w = code.size(3);
  auto gx = need_x ? torch::zeros_like(x) : torch::Tensor();
  auto gsize = torch::zeros({2}, x.options().dtype(torch::kFloat64));
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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &dynopool_max_forward, "DynOPool max forward (CPU)");
  m.def("backward", &dynopool_max_backward, "DynOPool max backward (CPU)");
}
