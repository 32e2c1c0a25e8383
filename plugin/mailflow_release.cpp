// mailflow_release.cpp — release_held_mail(): after an account's cut-over, the mail the
// policy service put on hold for it goes out (postsuper -H, then postqueue -i).
//
// Two sources name the messages: the store's held_mail rows (written before each HOLD
// was answered) and Postfix's hold queue itself (`postqueue -j`), whose recipients are
// mapped to accounts as a login would be. The second finds a message whose queue ID never
// reached the store (the service was killed between RCPT and END-OF-MESSAGE).
// Never: release a message one of whose recipients is still held; pass anything but a
// queue ID of Postfix's alphabet to postsuper.
#include "mailflow_private.hpp"

#include "mailferry/log.hpp"

#include <algorithm>
#include <boost/process.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace mf::mailflow {
namespace {

namespace bp = boost::process;

struct Ran {
    int exit_code = -1;
    std::string output; // stdout and stderr together
};

Result<Ran> run_postfix_tool(const Config& cfg, const std::string& tool,
                             std::vector<std::string> args) {
    const std::string exe = cfg.mailflow.postfix_command_dir + "/" + tool;
    args.insert(args.begin(), {"-c", cfg.mailflow.postfix_config_dir});
    Ran r;
    try {
        bp::ipstream out;
        bp::child c(exe, bp::args(args), (bp::std_out & bp::std_err) > out, bp::std_in.close());
        std::ostringstream all;
        all << out.rdbuf();
        c.wait();
        r.exit_code = c.exit_code();
        r.output = all.str();
    } catch (const std::exception& e) {
        return make_error("run " + exe, e.what(), Scope::server, Retry::later);
    }
    return r;
}

bool queue_id_ok(const std::string& id) {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    });
}

struct HoldEntry {
    std::string queue_id;
    std::vector<std::string> recipients;
};

// The hold queue, from `postqueue -j` (one JSON object per line).
Result<std::vector<HoldEntry>> hold_queue(const Config& cfg) {
    auto ran = run_postfix_tool(cfg, "postqueue", {"-j"});
    if (!ran) {
        return ran.error();
    }
    if (ran->exit_code != 0) {
        return make_error("postqueue -c " + cfg.mailflow.postfix_config_dir + " -j",
                          "exit " + std::to_string(ran->exit_code) + ": " +
                              sanitize_reply(ran->output, 300),
                          Scope::server, Retry::later);
    }
    std::vector<HoldEntry> out;
    std::istringstream lines(ran->output);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line.front() != '{') {
            continue; // a warning on stderr
        }
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object() || j.value("queue_name", "") != "hold") {
            continue;
        }
        HoldEntry e;
        e.queue_id = j.value("queue_id", "");
        if (auto rc = j.find("recipients"); rc != j.end() && rc->is_array()) {
            for (const auto& r : *rc) {
                if (r.is_object()) {
                    e.recipients.push_back(r.value("address", ""));
                }
            }
        }
        out.push_back(std::move(e));
    }
    return out;
}

// The accounts a message's recipients map to, and whether any of them is held.
struct Addressed {
    bool ours = false;      // some recipient is `account`
    std::string held_other; // a recipient whose account is still held, if any
};

Result<Addressed> addressed(const IdentityMap& map, Store& store, const HoldEntry& e,
                            const std::string& account) {
    Addressed a;
    for (const auto& rcpt : e.recipients) {
        auto r = detail::resolve_recipient(map, store, rcpt);
        if (!r) {
            return r.error();
        }
        if (!r->account) {
            continue;
        }
        if (r->account->name == account) {
            a.ours = true;
        } else if (r->account->state == AccountState::held) {
            a.held_other = r->account->name;
        }
    }
    return a;
}

ReleasedMessage release_one(const Config& cfg, const std::string& id) {
    if (!queue_id_ok(id)) {
        return {id, "failed", "not a Postfix queue ID"};
    }
    auto h = run_postfix_tool(cfg, "postsuper", {"-H", id});
    if (!h || h->exit_code != 0) {
        return {id, "failed",
                "postsuper -H: " + (h ? sanitize_reply(h->output, 300) : h.error().message())};
    }
    // Released mail waits in the deferred queue for the next queue run; ask for it now.
    // A failure only delays it, so it is a note, not an error.
    auto f = run_postfix_tool(cfg, "postqueue", {"-i", id});
    std::string note;
    if (!f || f->exit_code != 0) {
        note = "delivery at the next queue run (postqueue -i: " +
               (f ? sanitize_reply(f->output, 200) : f.error().message()) + ")";
    }
    return {id, "released", note};
}

} // namespace

Result<ReleaseReport> release_held_mail(const Config& cfg, Store& store,
                                        const std::string& account) {
    ReleaseReport rep;
    rep.account = account;
    auto acc = store.find_account(account);
    if (!acc) {
        return acc.error();
    }
    if (acc->has_value() && (**acc).state == AccountState::held) {
        rep.still_held = true;
        return rep;
    }
    auto map = IdentityMap::create(cfg);
    if (!map) {
        return map.error();
    }
    auto rows = store.list_held_mail(account);
    if (!rows) {
        return rows.error();
    }
    auto queue = hold_queue(cfg);
    if (!queue) {
        return queue.error();
    }
    std::set<std::string> known;
    for (const auto& r : *rows) {
        if (!r.queue_id.empty()) {
            known.insert(r.queue_id);
        }
    }
    std::set<std::string> on_hold;
    for (const auto& e : *queue) {
        on_hold.insert(e.queue_id);
        auto a = addressed(*map, store, e, account);
        if (!a) {
            return a.error();
        }
        if (!a->ours && known.count(e.queue_id) == 0) {
            continue; // held for somebody else, or by an admin
        }
        if (!a->held_other.empty()) {
            rep.messages.push_back(
                {e.queue_id, "kept", "also for " + a->held_other + ", still held"});
            continue;
        }
        ReleasedMessage m = release_one(cfg, e.queue_id);
        if (m.result == "released") {
            if (auto f = store.forget_held_mail(account, e.queue_id); !f) {
                return f.error();
            }
        }
        log::info("mailflow-release(" + account + "): " + m.queue_id + " " + m.result +
                  (m.detail.empty() ? "" : ": " + m.detail));
        rep.messages.push_back(std::move(m));
    }
    for (const auto& id : known) {
        if (on_hold.count(id) == 0) {
            // Released before, delivered, or deleted by an admin: nothing left to do.
            if (auto f = store.forget_held_mail(account, id); !f) {
                return f.error();
            }
            rep.messages.push_back({id, "gone", "no longer in the hold queue"});
        }
    }
    if (auto f = store.forget_held_mail(account, ""); !f) { // rows that never got an ID
        return f.error();
    }
    return rep;
}

Result<std::vector<std::string>> accounts_with_held_mail(const Config& cfg, Store& store) {
    std::set<std::string> names;
    auto rows = store.list_held_mail("");
    if (!rows) {
        return rows.error();
    }
    for (const auto& r : *rows) {
        names.insert(r.account);
    }
    auto map = IdentityMap::create(cfg);
    if (!map) {
        return map.error();
    }
    auto queue = hold_queue(cfg);
    if (!queue) {
        return queue.error();
    }
    for (const auto& e : *queue) {
        for (const auto& rcpt : e.recipients) {
            auto r = detail::resolve_recipient(*map, store, rcpt);
            if (!r) {
                return r.error();
            }
            if (r->account) {
                names.insert(r->account->name);
            }
        }
    }
    return std::vector<std::string>(names.begin(), names.end());
}

} // namespace mf::mailflow
