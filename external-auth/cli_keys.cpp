// cli_keys.cpp — `mailferry keys init|rotate|show`: the spool's key pair.
//
// SYNOPSIS
//   mailferry keys init [--force] [--owner USER]
//   mailferry keys rotate [--owner USER]
//   mailferry keys show
// DESCRIPTION
//   init creates the pair named by [spool] public_key_file / secret_key_file — the secret
//   key 0600 and owned by USER (default when run as root: `mailferry`, the worker's
//   user), the public key 0644 owned by root and USER's group — and the spool directory
//   (2770, USER's group). It refuses to replace an existing key without --force, as that
//   would make every pending entry unreadable.
//   rotate makes a new pair and re-seals every pending entry to it (each under its
//   account's login lock); the old secret key is kept as FILE.previous so entries sealed
//   by a login side that has not re-read the public key yet still open. Entries that
//   cannot be opened are listed and left as they were (exit 1).
//   show prints the key ids of both files (never a key).
// EXIT STATUS
//   0 ok, 1 rotate left entries it could not open, 2 usage or config error, 75 temporary.
// SECURITY
//   Never prints a key; the secret key is written through a temp file that has its final
//   mode and owner before any byte of the key is in it.
#include "cli_command.hpp"

#include "mailferry/spool.hpp"
#include "worker.hpp"

#include <cerrno>
#include <cstring>
#include <grp.h>
#include <iostream>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::cli {
namespace {

struct KeysArgs {
    bool force = false;
    std::string owner = "-"; // "-": the default
};

// The owner of the secret key: --owner, else `mailferry` when we are root and it exists.
Result<spool::KeyFiles> key_files(const Config& cfg, const std::string& owner) {
    spool::KeyFiles f;
    f.public_key_file = cfg.spool.public_key_file;
    f.secret_key_file = cfg.spool.secret_key_file;
    std::string user = owner;
    if (user == "-") {
        user = ::geteuid() == 0 && ::getpwnam("mailferry") != nullptr ? "mailferry" : "";
    }
    if (user.empty()) {
        return f;
    }
    const passwd* pw = ::getpwnam(user.c_str()); // NOLINT(concurrency-mt-unsafe): one thread
    if (pw == nullptr) {
        return make_error("--owner " + user, "no such user", Scope::config);
    }
    if (::geteuid() != 0 && pw->pw_uid != ::geteuid()) {
        return make_error("--owner " + user, "only root can give the key to another user",
                          Scope::config);
    }
    f.owner_uid = pw->pw_uid;
    f.owner_gid = pw->pw_gid;
    return f;
}

std::string owner_text(const spool::KeyFiles& f) {
    if (!f.owner_uid) {
        return "owned by you";
    }
    const passwd* pw = ::getpwuid(*f.owner_uid); // NOLINT(concurrency-mt-unsafe)
    return std::string("owned by ") + (pw != nullptr ? pw->pw_name : std::to_string(*f.owner_uid));
}

// What init and rotate both start from: the config and the key files it names.
struct KeysSetup {
    Config cfg;
    spool::KeyFiles files;
};

Result<KeysSetup> keys_setup(const Context& ctx, const KeysArgs& a) {
    auto cfg = load_config(ctx.config_path);
    if (!cfg) {
        return cfg.error();
    }
    auto files = key_files(*cfg, a.owner);
    if (!files) {
        return files.error();
    }
    return KeysSetup{std::move(*cfg), std::move(*files)};
}

// A key operation that failed: a config problem is a usage error, the rest temporary.
int key_failure(const Context& ctx, const Error& e) {
    return report_error(ctx, e, e.scope == Scope::config ? kExitUsage : kExitTempFail);
}

int init(const Context& ctx, const KeysArgs& a) {
    auto setup = keys_setup(ctx, a);
    if (!setup) {
        return report_error(ctx, setup.error(), kExitUsage);
    }
    const Config& cfg = setup->cfg;
    const spool::KeyFiles& files = setup->files;
    auto id = spool::generate_keys(files, a.force);
    if (!id) {
        return key_failure(ctx, id.error());
    }
    // The spool directory: the login side (group) writes, the worker reads.
    const std::string& dir = cfg.spool.dir;
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        if (::mkdir(dir.c_str(), 02770) != 0) {
            return report_error(ctx, make_error("mkdir(" + dir + ") failed", std::strerror(errno)),
                                kExitTempFail);
        }
        if (files.owner_gid) {
            [[maybe_unused]] int r = ::chown(dir.c_str(), 0, *files.owner_gid);
        }
        ::chmod(dir.c_str(), 02770);
    }
    if (ctx.json) {
        print_json({{"ok", true},
                    {"key_id", *id},
                    {"secret_key_file", files.secret_key_file},
                    {"public_key_file", files.public_key_file},
                    {"spool_dir", dir}});
    } else {
        std::cout << "created spool key pair " << *id << "\n"
                  << "  secret key " << files.secret_key_file << " (0600, " << owner_text(files)
                  << "; only the worker may read it)\n"
                  << "  public key " << files.public_key_file << " (0644)\n"
                  << "  spool      " << dir << "\n";
    }
    return kExitOk;
}

int rotate(const Context& ctx, const KeysArgs& a) {
    auto setup = keys_setup(ctx, a);
    if (!setup) {
        return report_error(ctx, setup.error(), kExitUsage);
    }
    auto rep = worker::rotate_keys(setup->cfg, setup->files);
    if (!rep) {
        return key_failure(ctx, rep.error());
    }
    if (ctx.json) {
        print_json({{"ok", rep->failed.empty()},
                    {"old_key_id", rep->old_key_id},
                    {"new_key_id", rep->new_key_id},
                    {"resealed", rep->resealed},
                    {"already_current", rep->current},
                    {"failed", rep->failed}});
    } else {
        std::cout << "rotated spool key " << rep->old_key_id << " -> " << rep->new_key_id << "\n"
                  << "  " << rep->resealed << " entries re-sealed, " << rep->current
                  << " already on the new key\n"
                  << "  the old secret key is kept as " << setup->files.secret_key_file
                  << ".previous until the next rotation\n";
        for (const auto& f : rep->failed) {
            std::cout << "  NOT re-sealed: " << f << "\n";
        }
    }
    return rep->failed.empty() ? kExitOk : kExitNo;
}

int show(const Context& ctx) {
    auto cfg = load_config(ctx.config_path);
    if (!cfg) {
        return report_error(ctx, cfg.error(), kExitUsage);
    }
    spool::Sealer sealer(cfg->spool.public_key_file);
    auto pub = sealer.key_id();
    std::string secret_id;
    std::string secret_err;
    if (auto op = spool::Opener::load(cfg->spool.secret_key_file)) {
        secret_id = op->key_id();
    } else {
        secret_err = op.error().message();
    }
    if (ctx.json) {
        print_json({{"ok", pub.ok()},
                    {"public_key_file", cfg->spool.public_key_file},
                    {"public_key_id", pub ? *pub : ""},
                    {"public_key_error", pub ? "" : pub.error().message()},
                    {"secret_key_file", cfg->spool.secret_key_file},
                    {"secret_key_id", secret_id},
                    {"secret_key_error", secret_err}});
    } else {
        std::cout << "public key " << cfg->spool.public_key_file << ": "
                  << (pub ? *pub : pub.error().message()) << "\n"
                  << "secret key " << cfg->spool.secret_key_file << ": "
                  << (secret_id.empty() ? secret_err : secret_id) << "\n";
        if (pub && !secret_id.empty() && *pub != secret_id) {
            std::cout << "MISMATCH: the login side seals to a key the worker cannot open\n";
        }
    }
    if (!pub) {
        return kExitUsage;
    }
    return secret_id.empty() || *pub == secret_id ? kExitOk : kExitNo;
}

} // namespace

const Command keys_command = {
    "keys",
    "create or rotate the credential spool's key pair",
    "  mailferry keys init                   (as root: secret key owned by mailferry)\n"
    "  mailferry keys init --force           replace an existing pair\n"
    "  mailferry keys rotate                 new pair; pending entries re-sealed\n"
    "  mailferry keys show                   key ids of both files",
    [](CLI::App& app) -> Handler {
        auto a = std::make_shared<KeysArgs>();
        app.require_subcommand(1);
        CLI::App* i = app.add_subcommand("init", "create the key pair and the spool directory");
        i->add_flag("--force", a->force, "replace existing key files");
        i->add_option("--owner", a->owner, "user owning the secret key (the worker's user)")
            ->option_text("USER");
        CLI::App* r = app.add_subcommand("rotate", "new key pair; re-seal pending entries");
        r->add_option("--owner", a->owner, "user owning the secret key (the worker's user)")
            ->option_text("USER");
        CLI::App* s = app.add_subcommand("show", "print the key ids of both files");
        return [a, i, r, s](const Context& ctx) {
            if (i->parsed()) {
                return init(ctx, *a);
            }
            if (r->parsed()) {
                return rotate(ctx, *a);
            }
            if (s->parsed()) {
                return show(ctx);
            }
            return kExitUsage;
        };
    },
};

} // namespace mf::cli
