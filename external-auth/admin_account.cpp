// admin_account.cpp — the logic of `mailferry account …` (see admin_account.hpp).
#include "admin_account.hpp"

#include "file_util.hpp"
#include "mailferry/password.hpp"
#include "mailferry/provisioner.hpp"
#include "mailferry/spool.hpp"
#include "spool_io.hpp"

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <termios.h>
#include <unistd.h>

namespace mf::cli {
namespace {

Error no(const std::string& what, const std::string& why) {
    return make_error(what, why, Scope::account);
}

std::string state_file_of(const Config& cfg, const std::string& name) {
    return cfg.worker.state_dir + "/" + spool::detail::encode_name(name) + ".db";
}

// A password as a login would take it (the engine answers FAIL to anything else).
Result<void> check_shape(const Secret& pw) {
    const char* what = "new password";
    if (pw.size() == 0) {
        return make_error(what, "is empty", Scope::config);
    }
    if (pw.size() > kMaxPasswordBytes) {
        return make_error(what, "is longer than " + std::to_string(kMaxPasswordBytes) + " bytes",
                          Scope::config);
    }
    for (char c : pw.view()) {
        if (c == '\r' || c == '\n' || c == '\0') {
            return make_error(what, "holds CR, LF or NUL, which no login can send", Scope::config);
        }
    }
    return {};
}

// Echo off on the terminal until destroyed.
class NoEcho {
  public:
    explicit NoEcho(int fd) : fd_(fd) {
        ok_ = ::tcgetattr(fd_, &saved_) == 0;
        if (ok_) {
            termios t = saved_;
            t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            t.c_lflag |= ECHONL;
            ok_ = ::tcsetattr(fd_, TCSAFLUSH, &t) == 0;
        }
    }
    ~NoEcho() {
        if (ok_) {
            ::tcsetattr(fd_, TCSAFLUSH, &saved_);
        }
    }
    NoEcho(const NoEcho&) = delete;
    NoEcho& operator=(const NoEcho&) = delete;
    [[nodiscard]] bool ok() const { return ok_; }

  private:
    int fd_;
    termios saved_{};
    bool ok_ = false;
};

// One line from the terminal into a Secret; the buffer is wiped.
// Echo goes off before the prompt shows: what is typed after it is never echoed, and
// TCSAFLUSH drops nothing typed in answer to it.
Result<Secret> read_line_secret(const char* prompt) {
    NoEcho off(STDIN_FILENO);
    if (!off.ok()) {
        return make_error("read the new password", "cannot turn off echo on the terminal",
                          Scope::config);
    }
    std::fputs(prompt, stderr);
    std::fflush(stderr);
    std::vector<char> buf(kMaxPasswordBytes + 2);
    std::size_t got = 0;
    bool line = false;
    while (got < buf.size()) {
        char c = 0;
        ssize_t n = ::read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0 || c == '\n') {
            line = n > 0;
            break;
        }
        buf[got++] = c;
    }
    Secret s(buf.data(), got);
    wipe(buf.data(), buf.size());
    if (!line) {
        return make_error("read the new password", "no complete line from the terminal",
                          Scope::config);
    }
    return s;
}

} // namespace

const std::vector<AccountState>& stored_states() {
    static const std::vector<AccountState> states = {
        AccountState::verified, AccountState::provisioned, AccountState::copying,
        AccountState::synced,   AccountState::resyncing,   AccountState::failed,
        AccountState::held,     AccountState::cutover,     AccountState::disabled,
    };
    return states;
}

Result<std::unique_ptr<Store>> open_store_for_change(const Config& cfg) {
    if (::access(cfg.store.path.c_str(), F_OK) != 0) {
        return make_error("open store " + cfg.store.path,
                          "no such file: no account has been migrated or imported with this "
                          "config yet",
                          Scope::config);
    }
    return open_sqlite_store(cfg.store.path, cfg.store.busy_timeout);
}

Result<Account> find_user(const Loaded& loaded, Store& store, const std::string& user) {
    auto id = loaded.ids->resolve(user);
    if (!id) {
        return no("account " + printable(user, 80), id.error().message());
    }
    auto found = find_login_account(store, id->canonical, id->provider->case_insensitive, nullptr);
    if (!found) {
        return found.error();
    }
    if (!found->has_value()) {
        return no("account " + id->canonical,
                  "no such account in the store: it never logged in and was not imported");
    }
    return std::move(**found);
}

Result<std::vector<Account>> list_filtered(Store& store, std::optional<AccountState> state,
                                           const std::string& provider) {
    auto all = store.list_accounts();
    if (!all) {
        return all.error();
    }
    std::vector<Account> out;
    for (auto& a : *all) {
        if ((!state || a.state == *state) && (provider.empty() || a.provider == provider)) {
            out.push_back(std::move(a));
        }
    }
    return out;
}

Result<AccountState> disable_account(Store& store, const Account& acct, const std::string& reason) {
    if (acct.state == AccountState::disabled) {
        return no("disable " + acct.name, "the account is disabled already");
    }
    AuditContext ctx{kAccountActor, "", reason.empty() ? "no reason given" : reason};
    if (auto r = store.set_state(acct.name, AccountState::disabled, ctx, acct.state); !r) {
        return r.error();
    }
    return acct.state;
}

Result<AccountState> enable_account(Store& store, const Account& acct) {
    if (acct.state != AccountState::disabled) {
        return no("enable " + acct.name,
                  std::string("the account is not disabled (it is ") + to_string(acct.state) + ")");
    }
    auto row = store.last_transition(acct.name, AccountState::disabled);
    if (!row) {
        return row.error();
    }
    AccountState back = AccountState::verified;
    if (row->has_value()) {
        auto s = account_state_from((**row).from_state);
        if (s && *s != AccountState::unknown && *s != AccountState::disabled) {
            back = *s;
        }
    }
    AuditContext ctx{kAccountActor, "", "enabled: back to the state before the disable"};
    if (auto r = store.set_state(acct.name, back, ctx, AccountState::disabled); !r) {
        return r.error();
    }
    return back;
}

Result<Job> requeue_account(const Config& cfg, Store& store, const Account& acct) {
    const std::string what = "requeue " + acct.name;
    if (!copies_may_run(acct.state)) {
        return no(what, std::string("the account is ") + to_string(acct.state) +
                            (acct.state == AccountState::disabled
                                 ? ": `mailferry account enable` it first"
                                 : ": no copy runs for it (it is not on the new server yet, or "
                                   "its migration has ended)"));
    }
    if (!cfg.target.configured) {
        return no(what, "the config has no [target]: there is no background copy");
    }
    auto entry = spool::Spool(cfg.spool.dir).get(acct.name);
    if (!entry) {
        return entry.error();
    }
    if (!entry->has_value()) {
        return no(what, "no sealed password in " + cfg.spool.dir +
                            ": the copy could not log in; the user's next login or a "
                            "`mailferry replay` stores one");
    }
    EnqueueRequest req;
    req.account = acct.name;
    req.provider = acct.provider;
    const bool first = acct.state == AccountState::provisioned ||
                       acct.state == AccountState::copying ||
                       (acct.state == AccountState::failed && acct.last_login == 0);
    req.kind = first ? JobKind::copy : JobKind::resync;
    req.priority = kPriorityLogin;
    req.run_at = now_unix_ms();
    return store.enqueue_job(req);
}

Result<ResetReport> reset_account(const Config& cfg, Store& store, const std::string& name) {
    AuditContext ctx{kAccountActor, "", "reset: migration forgotten"};
    auto was = store.forget_account(name, ctx, now_unix_ms());
    if (!was) {
        return was.error();
    }
    ResetReport rep;
    rep.was = std::move(*was);
    spool::Spool sp(cfg.spool.dir);
    if (::access(sp.path_for(name).c_str(), F_OK) == 0) {
        if (auto rm = sp.remove(name); rm) {
            rep.spool_entry = sp.path_for(name);
        } else {
            rep.warnings.push_back(rm.error().message());
        }
    }
    if (!cfg.worker.state_dir.empty()) {
        const std::string base = state_file_of(cfg, name);
        for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
            const std::string f = base + suffix;
            if (::unlink(f.c_str()) == 0) {
                if (*suffix == '\0') {
                    rep.state_file = f;
                }
            } else if (errno != ENOENT) {
                rep.warnings.push_back("unlink(" + f + ") failed: " + errno_text(errno));
            }
        }
    }
    return rep;
}

Result<Secret> read_new_password(const std::optional<std::string>& file) {
    if (file) {
        auto pw = spool::read_private_secret_file(*file, kMaxPasswordBytes + 2);
        if (!pw) {
            return pw.error();
        }
        std::string_view v = pw->view();
        if (!v.empty() && v.back() == '\n') {
            v.remove_suffix(1);
        }
        Secret s(v);
        if (auto ok = check_shape(s); !ok) {
            return ok.error();
        }
        return s;
    }
    if (::isatty(STDIN_FILENO) == 0) {
        return make_error("read the new password",
                          "stdin is not a terminal: type it on one, or use --password-file "
                          "(mode 0600, yours); never argv or the environment",
                          Scope::config);
    }
    auto first = read_line_secret("New password: ");
    if (!first) {
        return first.error();
    }
    if (auto ok = check_shape(*first); !ok) {
        return ok.error();
    }
    auto again = read_line_secret("Repeat it: ");
    if (!again) {
        return again.error();
    }
    if (again->view() != first->view()) {
        return make_error("read the new password", "the two entries differ; nothing changed",
                          Scope::config);
    }
    return std::move(*first);
}

Result<void> set_password(const Loaded& loaded, Store& store, const Account& acct,
                          const Secret& password) {
    auto hash = make_hash(password, loaded.cfg.hash);
    if (!hash) {
        return hash.error();
    }
    auto id = loaded.ids->resolve(acct.name);
    if (!id) {
        return no("password of " + acct.name, id.error().message());
    }
    use_stored_name(*id, acct.name);
    // A disabled account is on the new server when the state it was disabled from is.
    AccountState on = acct.state;
    if (on == AccountState::disabled) {
        auto row = store.last_transition(acct.name, AccountState::disabled);
        if (!row) {
            return row.error();
        }
        on = row->has_value() ? account_state_from((**row).from_state).value_or(on) : on;
    }
    // The new server's password database first: if it refuses, the store keeps the old
    // hash and the two still agree.
    if (is_migrated(on)) {
        auto prov = make_provisioner(loaded.cfg.provisioner);
        if (!prov) {
            return prov.error();
        }
        if (auto p = (*prov)->provision(ProvisionRequest{*id, password, *hash}); !p) {
            return p.error();
        }
    }
    return store.set_hash(acct.name, *hash,
                          AuditContext{kAccountActor, "", "password set by an admin"});
}

ExportReport export_lines(const std::vector<Account>& accounts, std::string& text) {
    ExportReport rep;
    auto bad = [](const std::string& v) {
        for (char c : v) {
            if (c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                return true;
            }
        }
        return false;
    };
    for (const auto& a : accounts) {
        if (a.hash.empty()) {
            rep.skipped.emplace_back(a.name, "no stored hash (" + std::string(to_string(a.state)) +
                                                 "): the user never logged in through mailferry");
        } else if (a.state == AccountState::disabled) {
            rep.skipped.emplace_back(a.name, "disabled");
        } else if (bad(a.name) || bad(a.hash)) {
            rep.skipped.emplace_back(a.name, "a ':' or control character would break the line");
        } else {
            text += a.name + ":" + a.hash + "::::::\n";
            ++rep.written;
        }
    }
    return rep;
}

Result<void> write_export(const std::string& path, const std::string& text) {
    return write_file_atomic(path, text, 0600);
}

} // namespace mf::cli
