// A torch-free program using only mopo::deploy: writes a tiny policy and a tiny dynamics model in the
// deploy format, loads them, and compares act / predict / max_std with a plain double-precision loop.
// Fails if LibTorch, MuJoCo or HDF5 is mapped into the process.
#include <mopo/deploy/deploy.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

bool loaded_forbidden_library() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  bool bad = false;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');  // the mapped file's path (addresses are hex: "c10" may occur)
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    for (const char* name : {"torch", "libc10", "mujoco", "hdf5"}) {
      if (path.find(name) != std::string::npos) {
        std::printf("forbidden library mapped: %s\n", line.c_str());
        bad = true;
      }
    }
  }
  return bad;
}

}  // namespace

int main() {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("mopo_deploy_consumer_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  double err = 0.0;

  // Policy: 3 → 4 (ReLU) → [μ, log σ] of 2 actions, box [−2, 2] × [0, 1].
  const int o = 3, a = 2, hdim = 4;
  std::vector<float> w0(hdim * o), b0 = {0.1f, -0.5f, 0.2f, 0.0f}, w1(2 * a * hdim), b1(2 * a, 0.05f);
  for (int i = 0; i < hdim; ++i)
    for (int j = 0; j < o; ++j)
      w0[i * o + j] = 0.1f * static_cast<float>(i + 1) - 0.2f * static_cast<float>(j);
  for (int i = 0; i < 2 * a; ++i)
    for (int j = 0; j < hdim; ++j) w1[i * hdim + j] = 0.3f * static_cast<float>(i - j) + 0.1f;
  mopo::deploy::detail::Bundle p;
  p.format = mopo::deploy::kPolicyFormat;
  p.meta = {{"obs_dim", o},
            {"act_dim", a},
            {"hidden", {hdim}},
            {"activation", "relu"},
            {"squash", "tanh"},
            {"log_std_min", -5.0},
            {"log_std_max", 2.0},
            {"action_low", {-2.0, 0.0}},
            {"action_high", {2.0, 1.0}}};
  p.add("l0.weight", {hdim, o}, w0);
  p.add("l0.bias", {hdim}, b0);
  p.add("l1.weight", {2 * a, hdim}, w1);
  p.add("l1.bias", {2 * a}, b1);
  mopo::deploy::detail::write_bundle(dir / "policy.mopo", p);
  auto policy = mopo::deploy::Policy::load(dir / "policy.mopo");
  Eigen::VectorXf obs(o), action(a);
  obs << 0.5f, -1.0f, 2.0f;
  policy.act(obs, action);
  const double low[2] = {-2.0, 0.0}, high[2] = {2.0, 1.0};
  std::vector<double> h(hdim);
  for (int i = 0; i < hdim; ++i) {
    double s = b0[i];
    for (int j = 0; j < o; ++j) s += w0[i * o + j] * obs[j];
    h[i] = std::max(s, 0.0);
  }
  for (int k = 0; k < a; ++k) {
    double mu = b1[k];
    for (int j = 0; j < hdim; ++j) mu += w1[k * hdim + j] * h[j];
    const double expected = low[k] + (std::tanh(mu) + 1.0) * 0.5 * (high[k] - low[k]);
    err = std::max(err, std::abs(expected - action[k]));
  }

  // Dynamics: obs 2, act 1, two members, hidden [3] swish, elite {1}.
  const int e_n = 2, in = 3, hd = 3, d = 3;
  mopo::deploy::detail::Bundle m;
  m.format = mopo::deploy::kDynamicsFormat;
  m.meta = {{"obs_dim", 2},   {"act_dim", 1},          {"ensemble_size", e_n},
            {"hidden", {hd}}, {"activation", "swish"}, {"elites", {1}}};
  const std::vector<float> mu_in = {0.1f, -0.2f, 0.0f}, sd_in = {1.0f, 2.0f, 0.5f};
  const std::vector<float> max_lv = {0.5f, 0.4f, 0.3f}, min_lv = {-6.0f, -5.0f, -4.0f};
  std::vector<float> wh(e_n * in * hd), bh(e_n * hd), wm(e_n * hd * d), bm(e_n * d), wl(e_n * hd * d),
      bl(e_n * d);
  for (std::size_t i = 0; i < wh.size(); ++i) wh[i] = 0.05f * static_cast<float>(i % 7) - 0.15f;
  for (std::size_t i = 0; i < wm.size(); ++i) wm[i] = 0.1f * static_cast<float>(i % 5) - 0.2f;
  for (std::size_t i = 0; i < wl.size(); ++i) wl[i] = 0.8f * static_cast<float>(i % 3) - 0.5f;
  for (std::size_t i = 0; i < bh.size(); ++i) bh[i] = 0.01f * static_cast<float>(i);
  for (std::size_t i = 0; i < bm.size(); ++i) bm[i] = -0.02f * static_cast<float>(i);
  for (std::size_t i = 0; i < bl.size(); ++i) bl[i] = 0.3f * static_cast<float>(i) - 1.0f;
  m.add("input_mean", {in}, mu_in);
  m.add("input_std", {in}, sd_in);
  m.add("max_logvar", {d}, max_lv);
  m.add("min_logvar", {d}, min_lv);
  m.add("hidden0.weight", {e_n, in, hd}, wh);
  m.add("hidden0.bias", {e_n, hd}, bh);
  m.add("mean_head.weight", {e_n, hd, d}, wm);
  m.add("mean_head.bias", {e_n, d}, bm);
  m.add("logvar_head.weight", {e_n, hd, d}, wl);
  m.add("logvar_head.bias", {e_n, d}, bl);
  mopo::deploy::detail::write_bundle(dir / "dynamics.mopo", m);
  auto model = mopo::deploy::DynamicsEnsemble::load(dir / "dynamics.mopo");
  mopo::deploy::RowMatrixXf s(2, 2), u(2, 1);
  s << 0.3f, -0.7f, 1.5f, 0.2f;
  u << 0.9f, -0.4f;
  mopo::deploy::Prediction pred;
  model.predict(s, u, pred);
  const Eigen::VectorXf penalty = mopo::deploy::max_std(pred);
  for (int r = 0; r < 2; ++r) {
    const double raw[3] = {s(r, 0), s(r, 1), u(r, 0)};
    double pen = 0.0;
    for (int e = 0; e < e_n; ++e) {
      double hid[3], norm2 = 0.0;
      for (int k = 0; k < hd; ++k) {
        double z = bh[e * hd + k];
        for (int i = 0; i < in; ++i) z += (raw[i] - mu_in[i]) / sd_in[i] * wh[(e * in + i) * hd + k];
        hid[k] = z / (1.0 + std::exp(-z));  // swish
      }
      for (int k = 0; k < d; ++k) {
        double mean = bm[e * d + k], lv = bl[e * d + k];
        for (int j = 0; j < hd; ++j) {
          mean += hid[j] * wm[(e * hd + j) * d + k];
          lv += hid[j] * wl[(e * hd + j) * d + k];
        }
        if (k < 2) mean += raw[k];
        lv = max_lv[k] - softplus(max_lv[k] - lv);
        lv = min_lv[k] + softplus(lv - min_lv[k]);
        const double sd = std::exp(0.5 * lv);
        norm2 += sd * sd;
        err = std::max(err, std::abs(mean - pred.member_mean(e)(r, k)));
        err = std::max(err, std::abs(sd - pred.member_std(e)(r, k)));
      }
      pen = std::max(pen, std::sqrt(norm2));
    }
    err = std::max(err, std::abs(pen - penalty[r]));
  }
  std::mt19937_64 rng(1);
  mopo::deploy::ModelStep step;
  model.sample(pred, rng, step, true);
  const bool elite_only = step.member[0] == 1 && step.member[1] == 1;
  fs::remove_all(dir);

  const bool forbidden = loaded_forbidden_library();
  std::printf("mopo deploy consumer: max abs error vs reference loops %.3g, elites only %s, torch-free %s\n",
              err, elite_only ? "yes" : "NO", forbidden ? "NO" : "yes");
  return (err < 1e-5 && elite_only && !forbidden) ? 0 : 1;
}
