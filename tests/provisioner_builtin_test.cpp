// provisioner_builtin_test.cpp — make_provisioner() picks the configured type; builtin
// succeeds without touching anything.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/provisioner.hpp"
#include "support/test_env.hpp"

#include <dirent.h>
#include <string>

namespace {

int entries(const std::string& dir) {
    int n = 0;
    DIR* d = ::opendir(dir.c_str());
    REQUIRE(d != nullptr);
    while (dirent* e = ::readdir(d)) { // NOLINT(concurrency-mt-unsafe): own DIR*
        std::string name = e->d_name;
        n += (name != "." && name != "..") ? 1 : 0;
    }
    ::closedir(d);
    return n;
}

} // namespace

TEST_CASE("builtin: provisioning succeeds and creates nothing") {
    mft::TempDir dir("mf-builtin");
    mf::ProvisionerConfig cfg; // builtin is the default type
    // Settings of other types are ignored by builtin.
    cfg.passwd_file = dir.file("users");
    cfg.command = {dir.file("never-run")};
    auto p = mf::make_provisioner(cfg);
    REQUIRE(p.ok());
    CHECK(std::string((*p)->name()) == "builtin");

    mf::Identity id;
    id.canonical = "anna@new.example";
    id.local = "anna";
    id.domain = "new.example";
    mf::Secret pw("pw");
    std::string hash = "{PLAIN}pw";
    CHECK((*p)->provision(mf::ProvisionRequest{id, pw, hash}).ok());
    CHECK((*p)->provision(mf::ProvisionRequest{id, pw, hash}).ok());
    CHECK(entries(dir.path()) == 0);
}

TEST_CASE("make_provisioner: each type gives its provisioner") {
    mf::ProvisionerConfig cfg;
    cfg.passwd_file = "/tmp/users";
    cfg.command = {"true"};
    cfg.url = "https://admin.example/accounts";
    cfg.token_file = "/nonexistent/token";

    struct Case {
        mf::ProvisionerType type;
        const char* name;
    };
    for (auto c :
         {Case{mf::ProvisionerType::builtin, "builtin"},
          Case{mf::ProvisionerType::dovecot_passwd_file, "dovecot-passwd-file"},
          Case{mf::ProvisionerType::command, "command"}, Case{mf::ProvisionerType::http, "http"}}) {
        cfg.type = c.type;
        auto p = mf::make_provisioner(cfg);
        REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message()));
        CHECK(std::string((*p)->name()) == c.name);
    }
}
