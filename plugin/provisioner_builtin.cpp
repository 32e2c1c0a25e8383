// provisioner_builtin.cpp — the "builtin" provisioner: mailferry's own store is the passdb.
//
// The new server authenticates through mailferry (checkpassword, PAM, the C ABI), so the
// account exists once the engine has written its row with the hash; there is nothing to
// create anywhere else. It must never touch files, programs or the network.
// Errors: none.
#include "provisioner_impl.hpp"

namespace mf::prov {
namespace {

class BuiltinProvisioner final : public Provisioner {
  public:
    Result<void> provision(const ProvisionRequest& /*req*/) override { return {}; }
    [[nodiscard]] const char* name() const override { return "builtin"; }
};

} // namespace

Result<std::unique_ptr<Provisioner>> make_builtin(const ProvisionerConfig& /*cfg*/) {
    return std::unique_ptr<Provisioner>(std::make_unique<BuiltinProvisioner>());
}

} // namespace mf::prov
