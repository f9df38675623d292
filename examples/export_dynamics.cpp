// export_dynamics: write a trained dynamics ensemble (GaussianEnsemble::save file) in the LibTorch-free
// deploy format (deploy::export_dynamics; read by mopo::deploy::DynamicsEnsemble, docs/deploy.md), and
// check the written file by comparing its predictions with the LibTorch model's on random inputs.
//
//   export_dynamics --model runs/mopo-halfcheetah-s0/dynamics.pt --out halfcheetah.dynamics.mopo
#include <CLI/CLI.hpp>

#include <iostream>

#include <mopo/core/random.hpp>
#include <mopo/core/runtime.hpp>
#include <mopo/deploy/deploy.hpp>
#include <mopo/deploy/export.hpp>
#include <mopo/models/gaussian_ensemble.hpp>

int main(int argc, char** argv) {
  mopo::configure_process();
  CLI::App app{"Export a GaussianEnsemble in the LibTorch-free deploy format"};
  std::string model_file, out;
  app.add_option("--model", model_file, "GaussianEnsemble::save file")->required()->check(CLI::ExistingFile);
  app.add_option("--out", out, "deploy file to write")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    const auto model = mopo::models::GaussianEnsemble::load(model_file);
    mopo::deploy::export_dynamics(model, out);
    // Read it back with the deploy runtime and compare on 256 random rows.
    auto deployed = mopo::deploy::DynamicsEnsemble::load(out);
    mopo::RandomState rng(0);
    const auto obs = torch::randn({256, model.obs_dim()}, rng.generator());
    const auto act = torch::rand({256, model.act_dim()}, rng.generator()) * 2 - 1;
    const auto ref = model.predict(obs, act);
    mopo::deploy::Prediction pred;
    deployed.predict(Eigen::Map<const mopo::deploy::RowMatrixXf>(obs.data_ptr<float>(), 256, model.obs_dim()),
                     Eigen::Map<const mopo::deploy::RowMatrixXf>(act.data_ptr<float>(), 256, model.act_dim()),
                     pred);
    const auto mean = ref.mean.contiguous();
    const double err = (pred.mean - Eigen::Map<const mopo::deploy::RowMatrixXf>(
                                        mean.data_ptr<float>(), pred.mean.rows(), pred.mean.cols()))
                           .cwiseAbs()
                           .maxCoeff();
    std::cout << "wrote " << out << " (" << model.ensemble_size() << " members, elites "
              << model.elites().size() << "); max |mean difference| vs LibTorch on 256 random rows: " << err
              << "\n";
  } catch (const mopo::Error& e) {
    std::cerr << "export_dynamics: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
